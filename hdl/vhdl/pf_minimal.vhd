-- pf_minimal: the smallest device worth a guest, in VHDL-2008 -- a skeleton
-- to copy (docs/hdl.md 3).  BAR0 holds one read-write register at 0x0 and
-- a constant at 0x4; there is no DMA and no interrupt.  Try it:
--   ./dev try hdl-vhdl,src=hdl/vhdl/pf_minimal.vhd,device=0xbeef
library ieee;
use ieee.std_logic_1164.all;

entity pf_minimal is
  port (
    clk            : in  std_logic;
    rst_n          : in  std_logic;
    -- BAR0: AXI4-Lite slave (docs/hdl.md 2)
    s_bar0_awaddr  : in  std_logic_vector(31 downto 0);
    s_bar0_awvalid : in  std_logic;
    s_bar0_awready : out std_logic;
    s_bar0_wdata   : in  std_logic_vector(31 downto 0);
    s_bar0_wstrb   : in  std_logic_vector(3 downto 0);
    s_bar0_wvalid  : in  std_logic;
    s_bar0_wready  : out std_logic;
    s_bar0_bresp   : out std_logic_vector(1 downto 0);
    s_bar0_bvalid  : out std_logic;
    s_bar0_bready  : in  std_logic;
    s_bar0_araddr  : in  std_logic_vector(31 downto 0);
    s_bar0_arvalid : in  std_logic;
    s_bar0_arready : out std_logic;
    s_bar0_rdata   : out std_logic_vector(31 downto 0);
    s_bar0_rresp   : out std_logic_vector(1 downto 0);
    s_bar0_rvalid  : out std_logic;
    s_bar0_rready  : in  std_logic;
    -- DMA: AXI4 master, unused here
    m_dma_awaddr   : out std_logic_vector(63 downto 0);
    m_dma_awlen    : out std_logic_vector(7 downto 0);
    m_dma_awsize   : out std_logic_vector(2 downto 0);
    m_dma_awburst  : out std_logic_vector(1 downto 0);
    m_dma_awvalid  : out std_logic;
    m_dma_awready  : in  std_logic;
    m_dma_wdata    : out std_logic_vector(31 downto 0);
    m_dma_wstrb    : out std_logic_vector(3 downto 0);
    m_dma_wlast    : out std_logic;
    m_dma_wvalid   : out std_logic;
    m_dma_wready   : in  std_logic;
    m_dma_bresp    : in  std_logic_vector(1 downto 0);
    m_dma_bvalid   : in  std_logic;
    m_dma_bready   : out std_logic;
    m_dma_araddr   : out std_logic_vector(63 downto 0);
    m_dma_arlen    : out std_logic_vector(7 downto 0);
    m_dma_arsize   : out std_logic_vector(2 downto 0);
    m_dma_arburst  : out std_logic_vector(1 downto 0);
    m_dma_arvalid  : out std_logic;
    m_dma_arready  : in  std_logic;
    m_dma_rdata    : in  std_logic_vector(31 downto 0);
    m_dma_rresp    : in  std_logic_vector(1 downto 0);
    m_dma_rlast    : in  std_logic;
    m_dma_rvalid   : in  std_logic;
    m_dma_rready   : out std_logic;
    -- Interrupts, unused here
    irq_req        : out std_logic;
    irq_msi        : out std_logic;
    irq_vector     : out std_logic_vector(10 downto 0);
    irq_ack        : in  std_logic;
    intx           : out std_logic;
    busy           : out std_logic
  );
end entity;

architecture rtl of pf_minimal is
  signal value, rdata : std_logic_vector(31 downto 0);
  signal bvalid, rvalid, wr, rd : std_logic;
begin
  -- One write and one read at a time: take each when nothing is pending.
  wr <= s_bar0_awvalid and s_bar0_wvalid and not bvalid;
  rd <= s_bar0_arvalid and not rvalid;
  s_bar0_awready <= wr;
  s_bar0_wready <= wr;
  s_bar0_bvalid <= bvalid;
  s_bar0_bresp <= "00";                         -- OKAY
  s_bar0_arready <= rd;
  s_bar0_rvalid <= rvalid;
  s_bar0_rresp <= "00";
  s_bar0_rdata <= rdata;
  busy <= '0';                                  -- no work of its own

  process (clk)
  begin
    if rising_edge(clk) then
      if rst_n = '0' then
        value <= (others => '0');
        bvalid <= '0';
        rvalid <= '0';
        rdata <= (others => '0');
      else
        if wr = '1' then
          -- The byte strobes say which bytes the guest wrote.
          if s_bar0_awaddr(11 downto 2) = "0000000000" then
            for k in 0 to 3 loop
              if s_bar0_wstrb(k) = '1' then
                value(8 * k + 7 downto 8 * k) <= s_bar0_wdata(8 * k + 7 downto 8 * k);
              end if;
            end loop;
          end if;
          bvalid <= '1';
        elsif s_bar0_bready = '1' then
          bvalid <= '0';
        end if;
        if rd = '1' then
          case s_bar0_araddr(11 downto 2) is
            when "0000000000" => rdata <= value;
            when "0000000001" => rdata <= x"600dcafe";
            when others => rdata <= (others => '0');
          end case;
          rvalid <= '1';
        elsif s_bar0_rready = '1' then
          rvalid <= '0';
        end if;
      end if;
    end if;
  end process;

  -- No DMA, no interrupt.
  m_dma_awaddr <= (others => '0');
  m_dma_awlen <= (others => '0');
  m_dma_awsize <= "010";
  m_dma_awburst <= "01";
  m_dma_awvalid <= '0';
  m_dma_wdata <= (others => '0');
  m_dma_wstrb <= (others => '0');
  m_dma_wlast <= '0';
  m_dma_wvalid <= '0';
  m_dma_bready <= '0';
  m_dma_araddr <= (others => '0');
  m_dma_arlen <= (others => '0');
  m_dma_arsize <= "010";
  m_dma_arburst <= "01";
  m_dma_arvalid <= '0';
  m_dma_rready <= '0';
  irq_req <= '0';
  irq_msi <= '0';
  irq_vector <= (others => '0');
  intx <= '0';
end architecture;
