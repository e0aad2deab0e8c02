-- A design with two AXI4-Lite BARs (test_hdl_bridge.py): BAR0 and BAR2
-- each read their own constant at 0x0 and a register at 0x4.
library ieee;
use ieee.std_logic_1164.all;

entity two_bars is
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
    -- BAR2: AXI4-Lite slave
    s_bar2_awaddr  : in  std_logic_vector(31 downto 0);
    s_bar2_awvalid : in  std_logic;
    s_bar2_awready : out std_logic;
    s_bar2_wdata   : in  std_logic_vector(31 downto 0);
    s_bar2_wstrb   : in  std_logic_vector(3 downto 0);
    s_bar2_wvalid  : in  std_logic;
    s_bar2_wready  : out std_logic;
    s_bar2_bresp   : out std_logic_vector(1 downto 0);
    s_bar2_bvalid  : out std_logic;
    s_bar2_bready  : in  std_logic;
    s_bar2_araddr  : in  std_logic_vector(31 downto 0);
    s_bar2_arvalid : in  std_logic;
    s_bar2_arready : out std_logic;
    s_bar2_rdata   : out std_logic_vector(31 downto 0);
    s_bar2_rresp   : out std_logic_vector(1 downto 0);
    s_bar2_rvalid  : out std_logic;
    s_bar2_rready  : in  std_logic;
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

architecture rtl of two_bars is
  signal reg0, reg2, rdata0, rdata2 : std_logic_vector(31 downto 0);
  signal bvalid0, rvalid0, bvalid2, rvalid2, wr0, rd0, wr2, rd2 : std_logic;
begin
  wr0 <= s_bar0_awvalid and s_bar0_wvalid and not bvalid0;
  rd0 <= s_bar0_arvalid and not rvalid0;
  wr2 <= s_bar2_awvalid and s_bar2_wvalid and not bvalid2;
  rd2 <= s_bar2_arvalid and not rvalid2;
  s_bar0_awready <= wr0;
  s_bar0_wready <= wr0;
  s_bar0_bvalid <= bvalid0;
  s_bar0_bresp <= "00";
  s_bar0_arready <= rd0;
  s_bar0_rvalid <= rvalid0;
  s_bar0_rresp <= "00";
  s_bar0_rdata <= rdata0;
  s_bar2_awready <= wr2;
  s_bar2_wready <= wr2;
  s_bar2_bvalid <= bvalid2;
  s_bar2_bresp <= "00";
  s_bar2_arready <= rd2;
  s_bar2_rvalid <= rvalid2;
  s_bar2_rresp <= "00";
  s_bar2_rdata <= rdata2;
  busy <= '0';

  process (clk)
  begin
    if rising_edge(clk) then
      if rst_n = '0' then
        reg0 <= (others => '0');
        reg2 <= (others => '0');
        rdata0 <= (others => '0');
        rdata2 <= (others => '0');
        bvalid0 <= '0';
        rvalid0 <= '0';
        bvalid2 <= '0';
        rvalid2 <= '0';
      else
        if wr0 = '1' then
          bvalid0 <= '1';
          if s_bar0_awaddr(11 downto 0) = x"004" then
            reg0 <= s_bar0_wdata;
          end if;
        elsif s_bar0_bready = '1' then
          bvalid0 <= '0';
        end if;
        if wr2 = '1' then
          bvalid2 <= '1';
          if s_bar2_awaddr(11 downto 0) = x"004" then
            reg2 <= s_bar2_wdata;
          end if;
        elsif s_bar2_bready = '1' then
          bvalid2 <= '0';
        end if;
        if rd0 = '1' then
          rvalid0 <= '1';
          if s_bar0_araddr(11 downto 0) = x"000" then
            rdata0 <= x"ba400000";
          else
            rdata0 <= reg0;
          end if;
        elsif s_bar0_rready = '1' then
          rvalid0 <= '0';
        end if;
        if rd2 = '1' then
          rvalid2 <= '1';
          if s_bar2_araddr(11 downto 0) = x"000" then
            rdata2 <= x"ba420000";
          else
            rdata2 <= reg2;
          end if;
        elsif s_bar2_rready = '1' then
          rvalid2 <= '0';
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
