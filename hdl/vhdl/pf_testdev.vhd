-- pf_testdev: the RTL example device of the pciefw RTL bridge, in VHDL-2008
-- (hdl/verilog/pf_testdev.v is the same device in Verilog).  Its BAR0
-- register map is a subset of testdev's (docs/testdev.md, docs/hdl.md
-- section 6): identity, scratch, and a DMA engine that copies, fills and
-- sums guest memory over the AXI4 master and reports completion with an
-- MSI-X or MSI vector or INTx.  The ports are the bridge's RTL device
-- interface (docs/hdl.md section 2).
library ieee;
use ieee.std_logic_1164.all;
use ieee.numeric_std.all;

entity pf_testdev is
  port (
    clk            : in  std_logic;
    rst_n          : in  std_logic;

    -- BAR0: AXI4-Lite slave, 32-bit data; the address is the BAR offset.
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

    -- DMA: AXI4 master, 64-bit bus addresses, 32-bit data, INCR bursts.
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

    -- Interrupts: a vector request held until acknowledged, INTx a level.
    irq_req        : out std_logic;
    irq_msi        : out std_logic;
    irq_vector     : out std_logic_vector(10 downto 0);
    irq_ack        : in  std_logic;
    intx           : out std_logic;
    -- High while the design works on its own: the clock keeps running.
    busy           : out std_logic
  );
end entity;

architecture rtl of pf_testdev is
  constant ID : std_logic_vector(31 downto 0) := x"7e57de01";
  constant REG_ID           : natural := 16#000#;
  constant REG_SCRATCH      : natural := 16#004#;
  constant REG_INV          : natural := 16#008#;
  constant REG_SRC_LO       : natural := 16#010#;
  constant REG_SRC_HI       : natural := 16#014#;
  constant REG_DST_LO       : natural := 16#018#;
  constant REG_DST_HI       : natural := 16#01c#;
  constant REG_LEN          : natural := 16#020#;
  constant REG_CMD          : natural := 16#024#;
  constant REG_STATUS       : natural := 16#028#;
  constant REG_IRQ          : natural := 16#02c#;
  constant REG_DB_MSIX      : natural := 16#030#;
  constant REG_DB_MSI       : natural := 16#034#;
  constant REG_INTX         : natural := 16#038#;
  constant REG_SCRATCH64_LO : natural := 16#040#;
  constant REG_SCRATCH64_HI : natural := 16#044#;
  constant REG_SUM          : natural := 16#050#;
  constant OP_COPY : std_logic_vector(1 downto 0) := "00";
  constant OP_FILL : std_logic_vector(1 downto 0) := "01";
  constant OP_SUM  : std_logic_vector(1 downto 0) := "10";
  constant MAX_LEN : unsigned(31 downto 0) := x"01000000";   -- 16 MiB

  type state_t is (S_IDLE, S_START, S_AR, S_R, S_AW, S_W, S_B, S_NEXT, S_FINISH);
  type buffer_t is array (0 to 255) of std_logic_vector(31 downto 0);

  -- Write data merged into a register under the byte strobes.
  function merge(old, data : std_logic_vector(31 downto 0);
                 strb : std_logic_vector(3 downto 0)) return std_logic_vector is
    variable v : std_logic_vector(31 downto 0) := old;
  begin
    for k in 0 to 3 loop
      if strb(k) = '1' then
        v(8 * k + 7 downto 8 * k) := data(8 * k + 7 downto 8 * k);
      end if;
    end loop;
    return v;
  end function;

  -- Registers.
  signal scratch, len, irq_sel, sum : std_logic_vector(31 downto 0);
  signal src, dst, scratch64 : std_logic_vector(63 downto 0);
  signal st_done, st_error, intx_r : std_logic;
  signal state : state_t;
  signal busy_dma : std_logic;

  -- AXI4-Lite slave.
  signal bvalid_r, rvalid_r : std_logic;
  signal rdata_r, rmux : std_logic_vector(31 downto 0);
  signal wr_go, rd_go : std_logic;
  signal waddr, raddr : natural range 0 to 4095;

  -- DMA engine.
  signal op : std_logic_vector(1 downto 0);
  signal want_irq, err : std_logic;
  signal cur_src, cur_dst : unsigned(63 downto 0);
  signal remaining : unsigned(24 downto 0);
  signal chunk, next_chunk : unsigned(12 downto 0);
  signal beat, last_beat : unsigned(7 downto 0);
  signal buf : buffer_t;
  signal buf_out : std_logic_vector(31 downto 0);
  signal at_last : std_logic;
  signal tail_strb, beat_strb : std_logic_vector(3 downto 0);
  signal r_bytes : unsigned(31 downto 0);

  -- Interrupt requests: the DMA engine's, then a doorbell's.
  signal dma_irq, dma_irq_msi, db_irq, db_irq_msi, irq_req_i : std_logic;
  signal dma_irq_vec, db_irq_vec, db_vec : std_logic_vector(10 downto 0);

  signal start, bad_len, bad_align : std_logic;
  signal start_op : std_logic_vector(1 downto 0);
begin
  busy_dma <= '0' when state = S_IDLE else '1';

  -- ---- AXI4-Lite slave: one write and one read at a time ----
  wr_go <= s_bar0_awvalid and s_bar0_wvalid and not bvalid_r;
  rd_go <= s_bar0_arvalid and not rvalid_r;
  waddr <= to_integer(unsigned(s_bar0_awaddr(11 downto 2))) * 4;
  raddr <= to_integer(unsigned(s_bar0_araddr(11 downto 2))) * 4;
  s_bar0_awready <= wr_go;
  s_bar0_wready <= wr_go;
  s_bar0_bvalid <= bvalid_r;
  s_bar0_bresp <= "00";
  s_bar0_arready <= rd_go;
  s_bar0_rvalid <= rvalid_r;
  s_bar0_rresp <= "00";
  s_bar0_rdata <= rdata_r;

  with raddr select rmux <=
    ID                                  when REG_ID,
    scratch                             when REG_SCRATCH,
    not scratch                         when REG_INV,
    src(31 downto 0)                    when REG_SRC_LO,
    src(63 downto 32)                   when REG_SRC_HI,
    dst(31 downto 0)                    when REG_DST_LO,
    dst(63 downto 32)                   when REG_DST_HI,
    len                                 when REG_LEN,
    (31 downto 3 => '0') & st_error & st_done & busy_dma when REG_STATUS,
    irq_sel                             when REG_IRQ,
    (31 downto 1 => '0') & intx_r       when REG_INTX,
    scratch64(31 downto 0)              when REG_SCRATCH64_LO,
    scratch64(63 downto 32)             when REG_SCRATCH64_HI,
    sum                                 when REG_SUM,
    (others => '0')                     when others;

  -- ---- DMA engine ----
  -- At most 1 KiB per burst, and no 4 KiB line crossed.
  process (all)
    variable c, src_room, dst_room : unsigned(12 downto 0);
  begin
    src_room := to_unsigned(4096, 13) - unsigned('0' & cur_src(11 downto 0));
    dst_room := to_unsigned(4096, 13) - unsigned('0' & cur_dst(11 downto 0));
    c := to_unsigned(1024, 13);
    if op /= OP_FILL and src_room < c then
      c := src_room;
    end if;
    if op /= OP_SUM and dst_room < c then
      c := dst_room;
    end if;
    if remaining < resize(c, 25) then
      c := remaining(12 downto 0);
    end if;
    next_chunk <= c;
  end process;

  -- Byte lanes of the burst's last beat that lie inside the transfer.
  with chunk(1 downto 0) select tail_strb <=
    "1111" when "00", "0001" when "01", "0011" when "10", "0111" when others;
  at_last <= '1' when beat = last_beat else '0';
  beat_strb <= tail_strb when at_last = '1' else "1111";

  process (all)
    variable s : unsigned(31 downto 0);
  begin
    s := (others => '0');
    for k in 0 to 3 loop
      if beat_strb(k) = '1' then
        s := s + unsigned(m_dma_rdata(8 * k + 7 downto 8 * k));
      end if;
    end loop;
    r_bytes <= s;
  end process;

  m_dma_araddr <= std_logic_vector(cur_src);
  m_dma_arlen <= std_logic_vector(last_beat);
  m_dma_arsize <= "010";
  m_dma_arburst <= "01";
  m_dma_arvalid <= '1' when state = S_AR else '0';
  m_dma_rready <= '1' when state = S_R else '0';
  m_dma_awaddr <= std_logic_vector(cur_dst);
  m_dma_awlen <= std_logic_vector(last_beat);
  m_dma_awsize <= "010";
  m_dma_awburst <= "01";
  m_dma_awvalid <= '1' when state = S_AW else '0';
  m_dma_wdata <= scratch(7 downto 0) & scratch(7 downto 0) & scratch(7 downto 0) &
                 scratch(7 downto 0) when op = OP_FILL else buf_out;
  m_dma_wstrb <= beat_strb;
  m_dma_wlast <= at_last;
  m_dma_wvalid <= '1' when state = S_W else '0';
  m_dma_bready <= '1' when state = S_B else '0';

  process (clk)
  begin
    if rising_edge(clk) then
      if state = S_W and m_dma_wready = '1' then
        buf_out <= buf(to_integer(beat + 1));
      else
        buf_out <= buf(to_integer(beat));
      end if;
    end if;
  end process;

  -- ---- Interrupts ----
  irq_req_i <= dma_irq or db_irq;
  irq_req <= irq_req_i;
  irq_msi <= dma_irq_msi when dma_irq = '1' else db_irq_msi;
  irq_vector <= dma_irq_vec when dma_irq = '1' else db_irq_vec;
  intx <= intx_r;
  -- Steps of the engine the bus does not show; waiting for DMA data or a
  -- write response is not work: the bridge may stop the clock meanwhile.
  busy <= '1' when state = S_START or state = S_NEXT or state = S_FINISH else '0';

  -- A doorbell's vector; one that does not fit 11 bits asks for 2047,
  -- which no function declares (the bridge drops it, as testdev would).
  db_vec <= (others => '1') when unsigned(s_bar0_wdata(31 downto 11)) /= 0
            else s_bar0_wdata(10 downto 0);

  start <= '1' when wr_go = '1' and waddr = REG_CMD and s_bar0_wstrb(0) = '1' and
                    s_bar0_wdata(0) = '1' and busy_dma = '0' else '0';
  bad_len <= '1' when unsigned(len) = 0 or unsigned(len) > MAX_LEN else '0';
  start_op <= s_bar0_wdata(5 downto 4);
  bad_align <= '1' when (start_op /= OP_FILL and src(1 downto 0) /= "00") or
                        (start_op /= OP_SUM and dst(1 downto 0) /= "00") or
                        start_op = "11" else '0';

  process (clk)
    variable wd : std_logic_vector(31 downto 0);
    variable ws : std_logic_vector(3 downto 0);
  begin
    if rising_edge(clk) then
      wd := s_bar0_wdata;
      ws := s_bar0_wstrb;
      if rst_n = '0' then
        scratch <= (others => '0');
        len <= (others => '0');
        irq_sel <= (others => '0');
        sum <= (others => '0');
        src <= (others => '0');
        dst <= (others => '0');
        scratch64 <= (others => '0');
        st_done <= '0';
        st_error <= '0';
        intx_r <= '0';
        bvalid_r <= '0';
        rvalid_r <= '0';
        rdata_r <= (others => '0');
        state <= S_IDLE;
        op <= OP_COPY;
        want_irq <= '0';
        err <= '0';
        cur_src <= (others => '0');
        cur_dst <= (others => '0');
        remaining <= (others => '0');
        chunk <= (others => '0');
        beat <= (others => '0');
        last_beat <= (others => '0');
        dma_irq <= '0';
        dma_irq_msi <= '0';
        dma_irq_vec <= (others => '0');
        db_irq <= '0';
        db_irq_msi <= '0';
        db_irq_vec <= (others => '0');
      else
        -- Register reads.
        if rd_go = '1' then
          rvalid_r <= '1';
          rdata_r <= rmux;
        elsif rvalid_r = '1' and s_bar0_rready = '1' then
          rvalid_r <= '0';
        end if;
        -- Register writes.
        if bvalid_r = '1' and s_bar0_bready = '1' then
          bvalid_r <= '0';
        end if;
        if wr_go = '1' then
          bvalid_r <= '1';
          case waddr is
            when REG_SCRATCH => scratch <= merge(scratch, wd, ws);
            when REG_SRC_LO => src(31 downto 0) <= merge(src(31 downto 0), wd, ws);
            when REG_SRC_HI => src(63 downto 32) <= merge(src(63 downto 32), wd, ws);
            when REG_DST_LO => dst(31 downto 0) <= merge(dst(31 downto 0), wd, ws);
            when REG_DST_HI => dst(63 downto 32) <= merge(dst(63 downto 32), wd, ws);
            when REG_LEN => len <= merge(len, wd, ws);
            when REG_IRQ => irq_sel <= merge(irq_sel, wd, ws);
            when REG_SCRATCH64_LO =>
              scratch64(31 downto 0) <= merge(scratch64(31 downto 0), wd, ws);
            when REG_SCRATCH64_HI =>
              scratch64(63 downto 32) <= merge(scratch64(63 downto 32), wd, ws);
            when REG_STATUS =>
              if ws(0) = '1' and wd(1) = '1' then
                st_done <= '0';
              end if;
              if ws(0) = '1' and wd(2) = '1' then
                st_error <= '0';
              end if;
            when REG_INTX =>
              if ws(0) = '1' then
                intx_r <= wd(0);
              end if;
            when REG_DB_MSIX | REG_DB_MSI =>
              if ws(0) = '1' then
                db_irq <= '1';
                db_irq_msi <= '1' when waddr = REG_DB_MSI else '0';
                db_irq_vec <= db_vec;
              end if;
            when others => null;
          end case;
        end if;
        -- Interrupt acknowledged: the one presented goes.
        if irq_ack = '1' and irq_req_i = '1' then
          if dma_irq = '1' then
            dma_irq <= '0';
          else
            db_irq <= '0';
          end if;
        end if;

        case state is
          when S_IDLE =>
            if start = '1' then
              op <= start_op;
              want_irq <= wd(1);
              err <= '0';
              cur_src <= unsigned(src);
              cur_dst <= unsigned(dst);
              remaining <= unsigned(len(24 downto 0));
              if bad_len = '1' or bad_align = '1' then
                err <= '1';
                state <= S_FINISH;
              else
                state <= S_START;
              end if;
            end if;
          when S_START =>
            chunk <= next_chunk;
            last_beat <= resize(shift_right(next_chunk - 1, 2), 8);
            beat <= (others => '0');
            if op = OP_FILL then
              state <= S_AW;
            else
              state <= S_AR;
            end if;
          when S_AR =>
            if m_dma_arready = '1' then
              state <= S_R;
            end if;
          when S_R =>
            if m_dma_rvalid = '1' then
              if op = OP_COPY then
                buf(to_integer(beat)) <= m_dma_rdata;
              end if;
              if op = OP_SUM then
                sum <= std_logic_vector(unsigned(sum) + r_bytes);
              end if;
              if m_dma_rresp /= "00" then
                err <= '1';
              end if;
              beat <= beat + 1;
              if at_last = '1' then
                beat <= (others => '0');
                if op = OP_SUM or err = '1' or m_dma_rresp /= "00" then
                  state <= S_NEXT;
                else
                  state <= S_AW;
                end if;
              end if;
            end if;
          when S_AW =>
            if m_dma_awready = '1' then
              state <= S_W;
            end if;
          when S_W =>
            if m_dma_wready = '1' then
              beat <= beat + 1;
              if at_last = '1' then
                state <= S_B;
              end if;
            end if;
          when S_B =>
            if m_dma_bvalid = '1' then
              if m_dma_bresp /= "00" then
                err <= '1';
              end if;
              state <= S_NEXT;
            end if;
          when S_NEXT =>
            remaining <= remaining - resize(chunk, 25);
            cur_src <= cur_src + resize(chunk, 64);
            cur_dst <= cur_dst + resize(chunk, 64);
            if err = '1' or remaining = resize(chunk, 25) then
              state <= S_FINISH;
            else
              state <= S_START;
            end if;
          when S_FINISH =>
            -- The last write's response is in: the data is out before the
            -- interrupt that reports it.
            if err = '1' then
              st_error <= '1';
            else
              st_done <= '1';
            end if;
            if want_irq = '1' then
              case irq_sel(1 downto 0) is
                when "01" => intx_r <= '1';
                when "10" | "11" =>
                  dma_irq <= '1';
                  dma_irq_msi <= '1' when irq_sel(1 downto 0) = "10" else '0';
                  dma_irq_vec <= "000" & irq_sel(15 downto 8);
                when others => null;
              end case;
            end if;
            state <= S_IDLE;
        end case;
        -- SUM starts from zero.
        if start = '1' and start_op = OP_SUM then
          sum <= (others => '0');
        end if;
      end if;
    end if;
  end process;
end architecture;
