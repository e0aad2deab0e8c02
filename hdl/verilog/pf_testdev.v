// pf_testdev: the RTL example device of the pciefw RTL bridge, in Verilog
// (hdl/vhdl/pf_testdev.vhd is the same device in VHDL).  Its BAR0 register
// map is a subset of testdev's (docs/testdev.md, docs/hdl.md section 6):
// identity, scratch, and a DMA engine that copies, fills and sums guest
// memory over the AXI4 master and reports completion with an MSI-X or MSI
// vector or INTx.  The ports are the bridge's RTL device interface
// (docs/hdl.md section 2): clock, active-low reset, an AXI4-Lite slave for
// BAR0, an AXI4 master for DMA, the interrupt port.
`default_nettype none

module pf_testdev (
    input  wire        clk,
    input  wire        rst_n,

    // BAR0: AXI4-Lite slave, 32-bit data; the address is the BAR offset.
    input  wire [31:0] s_bar0_awaddr,
    input  wire        s_bar0_awvalid,
    output wire        s_bar0_awready,
    input  wire [31:0] s_bar0_wdata,
    input  wire [3:0]  s_bar0_wstrb,
    input  wire        s_bar0_wvalid,
    output wire        s_bar0_wready,
    output wire [1:0]  s_bar0_bresp,
    output wire        s_bar0_bvalid,
    input  wire        s_bar0_bready,
    input  wire [31:0] s_bar0_araddr,
    input  wire        s_bar0_arvalid,
    output wire        s_bar0_arready,
    output wire [31:0] s_bar0_rdata,
    output wire [1:0]  s_bar0_rresp,
    output wire        s_bar0_rvalid,
    input  wire        s_bar0_rready,

    // DMA: AXI4 master, 64-bit bus addresses, 32-bit data, INCR bursts.
    output wire [63:0] m_dma_awaddr,
    output wire [7:0]  m_dma_awlen,
    output wire [2:0]  m_dma_awsize,
    output wire [1:0]  m_dma_awburst,
    output wire        m_dma_awvalid,
    input  wire        m_dma_awready,
    output wire [31:0] m_dma_wdata,
    output wire [3:0]  m_dma_wstrb,
    output wire        m_dma_wlast,
    output wire        m_dma_wvalid,
    input  wire        m_dma_wready,
    input  wire [1:0]  m_dma_bresp,
    input  wire        m_dma_bvalid,
    output wire        m_dma_bready,
    output wire [63:0] m_dma_araddr,
    output wire [7:0]  m_dma_arlen,
    output wire [2:0]  m_dma_arsize,
    output wire [1:0]  m_dma_arburst,
    output wire        m_dma_arvalid,
    input  wire        m_dma_arready,
    input  wire [31:0] m_dma_rdata,
    input  wire [1:0]  m_dma_rresp,
    input  wire        m_dma_rlast,
    input  wire        m_dma_rvalid,
    output wire        m_dma_rready,

    // Interrupts: a vector request held until acknowledged, INTx a level.
    output wire        irq_req,
    output wire        irq_msi,
    output wire [10:0] irq_vector,
    input  wire        irq_ack,
    output wire        intx,
    // High while the design works on its own: the clock keeps running.
    output wire        busy
);

    localparam [31:0] ID = 32'h7e57de01;
    localparam [11:0] REG_ID = 12'h000, REG_SCRATCH = 12'h004, REG_INV = 12'h008,
        REG_SRC_LO = 12'h010, REG_SRC_HI = 12'h014, REG_DST_LO = 12'h018,
        REG_DST_HI = 12'h01c, REG_LEN = 12'h020, REG_CMD = 12'h024,
        REG_STATUS = 12'h028, REG_IRQ = 12'h02c, REG_DB_MSIX = 12'h030,
        REG_DB_MSI = 12'h034, REG_INTX = 12'h038, REG_SCRATCH64_LO = 12'h040,
        REG_SCRATCH64_HI = 12'h044, REG_SUM = 12'h050;
    localparam [1:0] OP_COPY = 2'd0, OP_FILL = 2'd1, OP_SUM = 2'd2;
    localparam [1:0] IRQ_INTX = 2'd1, IRQ_MSI = 2'd2, IRQ_MSIX = 2'd3;
    localparam [31:0] MAX_LEN = 32'h0100_0000;     // 16 MiB
    localparam [3:0] S_IDLE = 4'd0, S_START = 4'd1, S_AR = 4'd2, S_R = 4'd3,
        S_AW = 4'd4, S_W = 4'd5, S_B = 4'd6, S_NEXT = 4'd7, S_FINISH = 4'd8;

    // ---- Registers ----
    reg [31:0] scratch, len, irq_sel, sum;
    reg [63:0] src, dst, scratch64;
    reg        st_done, st_error, intx_r;
    reg [3:0]  state;               // the DMA engine's
    wire       busy_dma = state != S_IDLE;

    // Write data merged into a register under the byte strobes.
    function automatic [31:0] merge(input [31:0] old, input [31:0] data,
                                    input [3:0] strb);
        integer k;
        begin
            merge = old;
            for (k = 0; k < 4; k = k + 1)
                if (strb[k])
                    merge[8 * k +: 8] = data[8 * k +: 8];
        end
    endfunction

    // ---- AXI4-Lite slave: one write and one read at a time ----
    reg        bvalid_r, rvalid_r;
    reg [31:0] rdata_r;
    wire       wr_go = s_bar0_awvalid && s_bar0_wvalid && !bvalid_r;
    wire       rd_go = s_bar0_arvalid && !rvalid_r;
    wire [11:0] waddr = {s_bar0_awaddr[11:2], 2'b00};
    wire [11:0] raddr = {s_bar0_araddr[11:2], 2'b00};
    wire [31:0] wdata = s_bar0_wdata;
    wire [3:0]  wstrb = s_bar0_wstrb;

    assign s_bar0_awready = wr_go;
    assign s_bar0_wready = wr_go;
    assign s_bar0_bvalid = bvalid_r;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = rd_go;
    assign s_bar0_rvalid = rvalid_r;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = rdata_r;

    reg [31:0] rmux;
    always @* begin
        case (raddr)
            REG_ID:           rmux = ID;
            REG_SCRATCH:      rmux = scratch;
            REG_INV:          rmux = ~scratch;
            REG_SRC_LO:       rmux = src[31:0];
            REG_SRC_HI:       rmux = src[63:32];
            REG_DST_LO:       rmux = dst[31:0];
            REG_DST_HI:       rmux = dst[63:32];
            REG_LEN:          rmux = len;
            REG_STATUS:       rmux = {29'd0, st_error, st_done, busy_dma};
            REG_IRQ:          rmux = irq_sel;
            REG_INTX:         rmux = {31'd0, intx_r};
            REG_SCRATCH64_LO: rmux = scratch64[31:0];
            REG_SCRATCH64_HI: rmux = scratch64[63:32];
            REG_SUM:          rmux = sum;
            default:          rmux = 32'd0;
        endcase
    end

    // ---- DMA engine ----
    reg [1:0]  op;
    reg        want_irq, err;
    reg [63:0] cur_src, cur_dst;
    reg [24:0] remaining;
    reg [12:0] chunk;               // bytes of this burst
    reg [7:0]  beat, last_beat;
    reg [31:0] buffer [0:255];
    reg [31:0] buf_out;

    wire [12:0] src_room = 13'd4096 - {1'b0, cur_src[11:0]};
    wire [12:0] dst_room = 13'd4096 - {1'b0, cur_dst[11:0]};
    reg  [12:0] next_chunk;         // at most 1 KiB, no 4 KiB line crossed
    always @* begin
        next_chunk = 13'd1024;
        if (op != OP_FILL && src_room < next_chunk)
            next_chunk = src_room;
        if (op != OP_SUM && dst_room < next_chunk)
            next_chunk = dst_room;
        if (remaining < {12'd0, next_chunk})
            next_chunk = remaining[12:0];
    end
    wire [12:0] chunk_m1 = next_chunk - 13'd1;     // 0 .. 1023
    // Byte lanes of the burst's last beat that lie inside the transfer.
    wire [3:0]  tail_strb = chunk[1:0] == 2'd0 ? 4'hf : chunk[1:0] == 2'd1 ? 4'h1 :
                            chunk[1:0] == 2'd2 ? 4'h3 : 4'h7;
    wire        at_last = beat == last_beat;
    wire [3:0]  beat_strb = at_last ? tail_strb : 4'hf;
    wire [31:0] fill_word = {4{scratch[7:0]}};

    // Bytes of a read beat that belong to the transfer, summed.
    wire [31:0] r_masked = m_dma_rdata & {{8{beat_strb[3]}}, {8{beat_strb[2]}},
                                          {8{beat_strb[1]}}, {8{beat_strb[0]}}};
    wire [31:0] r_bytes = {24'd0, r_masked[7:0]} + {24'd0, r_masked[15:8]} +
                          {24'd0, r_masked[23:16]} + {24'd0, r_masked[31:24]};

    assign m_dma_araddr = cur_src;
    assign m_dma_arlen = last_beat;
    assign m_dma_arsize = 3'd2;
    assign m_dma_arburst = 2'b01;
    assign m_dma_arvalid = state == S_AR;
    assign m_dma_rready = state == S_R;
    assign m_dma_awaddr = cur_dst;
    assign m_dma_awlen = last_beat;
    assign m_dma_awsize = 3'd2;
    assign m_dma_awburst = 2'b01;
    assign m_dma_awvalid = state == S_AW;
    assign m_dma_wdata = op == OP_FILL ? fill_word : buf_out;
    assign m_dma_wstrb = beat_strb;
    assign m_dma_wlast = at_last;
    assign m_dma_wvalid = state == S_W;
    assign m_dma_bready = state == S_B;

    always @(posedge clk)
        buf_out <= buffer[(state == S_W && m_dma_wready) ? beat + 8'd1 : beat];

    // ---- Interrupt requests: the DMA engine's, then a doorbell's ----
    reg        dma_irq, dma_irq_msi, db_irq, db_irq_msi;
    reg [10:0] dma_irq_vec, db_irq_vec;
    assign irq_req = dma_irq || db_irq;
    assign irq_msi = dma_irq ? dma_irq_msi : db_irq_msi;
    assign irq_vector = dma_irq ? dma_irq_vec : db_irq_vec;
    assign intx = intx_r;
    // Steps of the engine the bus does not show; waiting for DMA data or a
    // write response is not work: the bridge may stop the clock meanwhile.
    assign busy = state == S_START || state == S_NEXT || state == S_FINISH;

    // A doorbell's vector; one that does not fit 11 bits asks for 2047,
    // which no function declares (the bridge drops it, as testdev would).
    wire [10:0] db_vec = |wdata[31:11] ? 11'h7ff : wdata[10:0];

    wire start = wr_go && waddr == REG_CMD && wstrb[0] && wdata[0] && !busy_dma;
    wire bad_len = len == 32'd0 || len > MAX_LEN;
    wire [1:0] start_op = wdata[5:4];
    wire bad_align = (start_op != OP_FILL && src[1:0] != 2'd0) ||
                     (start_op != OP_SUM && dst[1:0] != 2'd0) || start_op == 2'd3;

    always @(posedge clk) begin
        if (!rst_n) begin
            scratch <= 32'd0;
            len <= 32'd0;
            irq_sel <= 32'd0;
            sum <= 32'd0;
            src <= 64'd0;
            dst <= 64'd0;
            scratch64 <= 64'd0;
            st_done <= 1'b0;
            st_error <= 1'b0;
            intx_r <= 1'b0;
            bvalid_r <= 1'b0;
            rvalid_r <= 1'b0;
            rdata_r <= 32'd0;
            state <= S_IDLE;
            op <= OP_COPY;
            want_irq <= 1'b0;
            err <= 1'b0;
            cur_src <= 64'd0;
            cur_dst <= 64'd0;
            remaining <= 25'd0;
            chunk <= 13'd0;
            beat <= 8'd0;
            last_beat <= 8'd0;
            dma_irq <= 1'b0;
            dma_irq_msi <= 1'b0;
            dma_irq_vec <= 11'd0;
            db_irq <= 1'b0;
            db_irq_msi <= 1'b0;
            db_irq_vec <= 11'd0;
        end else begin
            // Register reads.
            if (rd_go) begin
                rvalid_r <= 1'b1;
                rdata_r <= rmux;
            end else if (rvalid_r && s_bar0_rready) begin
                rvalid_r <= 1'b0;
            end
            // Register writes.
            if (bvalid_r && s_bar0_bready)
                bvalid_r <= 1'b0;
            if (wr_go) begin
                bvalid_r <= 1'b1;
                case (waddr)
                    REG_SCRATCH:      scratch <= merge(scratch, wdata, wstrb);
                    REG_SRC_LO:       src[31:0] <= merge(src[31:0], wdata, wstrb);
                    REG_SRC_HI:       src[63:32] <= merge(src[63:32], wdata, wstrb);
                    REG_DST_LO:       dst[31:0] <= merge(dst[31:0], wdata, wstrb);
                    REG_DST_HI:       dst[63:32] <= merge(dst[63:32], wdata, wstrb);
                    REG_LEN:          len <= merge(len, wdata, wstrb);
                    REG_IRQ:          irq_sel <= merge(irq_sel, wdata, wstrb);
                    REG_SCRATCH64_LO: scratch64[31:0] <= merge(scratch64[31:0], wdata, wstrb);
                    REG_SCRATCH64_HI: scratch64[63:32] <= merge(scratch64[63:32], wdata, wstrb);
                    REG_STATUS: if (wstrb[0]) begin
                        if (wdata[1]) st_done <= 1'b0;
                        if (wdata[2]) st_error <= 1'b0;
                    end
                    REG_INTX: if (wstrb[0]) intx_r <= wdata[0];
                    REG_DB_MSIX: if (wstrb[0]) begin
                        db_irq <= 1'b1;
                        db_irq_msi <= 1'b0;
                        db_irq_vec <= db_vec;
                    end
                    REG_DB_MSI: if (wstrb[0]) begin
                        db_irq <= 1'b1;
                        db_irq_msi <= 1'b1;
                        db_irq_vec <= db_vec;
                    end
                    default: ;
                endcase
            end
            // Interrupt acknowledged: the one presented goes.
            if (irq_ack && irq_req) begin
                if (dma_irq)
                    dma_irq <= 1'b0;
                else
                    db_irq <= 1'b0;
            end

            case (state)
                S_IDLE: if (start) begin
                    op <= start_op;
                    want_irq <= wdata[1];
                    err <= 1'b0;
                    cur_src <= src;
                    cur_dst <= dst;
                    remaining <= len[24:0];
                    if (bad_len || bad_align) begin
                        err <= 1'b1;
                        state <= S_FINISH;
                    end else begin
                        state <= S_START;
                    end
                end
                S_START: begin
                    chunk <= next_chunk;
                    last_beat <= chunk_m1[9:2];
                    beat <= 8'd0;
                    state <= op == OP_FILL ? S_AW : S_AR;
                end
                S_AR: if (m_dma_arready) state <= S_R;
                S_R: if (m_dma_rvalid) begin
                    if (op == OP_COPY)
                        buffer[beat] <= m_dma_rdata;
                    if (op == OP_SUM)
                        sum <= sum + r_bytes;
                    if (m_dma_rresp != 2'b00)
                        err <= 1'b1;
                    beat <= beat + 8'd1;
                    if (at_last) begin
                        beat <= 8'd0;
                        state <= (op == OP_SUM || err || m_dma_rresp != 2'b00) ?
                                 S_NEXT : S_AW;
                    end
                end
                S_AW: if (m_dma_awready) state <= S_W;
                S_W: if (m_dma_wready) begin
                    beat <= beat + 8'd1;
                    if (at_last)
                        state <= S_B;
                end
                S_B: if (m_dma_bvalid) begin
                    if (m_dma_bresp != 2'b00)
                        err <= 1'b1;
                    state <= S_NEXT;
                end
                S_NEXT: begin
                    remaining <= remaining - {12'd0, chunk};
                    cur_src <= cur_src + {51'd0, chunk};
                    cur_dst <= cur_dst + {51'd0, chunk};
                    state <= (err || remaining == {12'd0, chunk}) ? S_FINISH : S_START;
                end
                S_FINISH: begin
                    // The last write's response is in: the data is out
                    // before the interrupt that reports it.
                    if (err)
                        st_error <= 1'b1;
                    else
                        st_done <= 1'b1;
                    if (want_irq) begin
                        case (irq_sel[1:0])
                            IRQ_INTX: intx_r <= 1'b1;
                            IRQ_MSI, IRQ_MSIX: begin
                                dma_irq <= 1'b1;
                                dma_irq_msi <= irq_sel[1:0] == IRQ_MSI;
                                dma_irq_vec <= {3'd0, irq_sel[15:8]};
                            end
                            default: ;
                        endcase
                    end
                    state <= S_IDLE;
                end
                default: state <= S_IDLE;
            endcase
            // SUM starts from zero.
            if (start && start_op == OP_SUM)
                sum <= 32'd0;
        end
    end

    // The bits a 32-bit register file does not decode.
    // verilator lint_off UNUSEDSIGNAL
    wire unused = &{1'b0, s_bar0_awaddr[31:12], s_bar0_awaddr[1:0],
                    s_bar0_araddr[31:12], s_bar0_araddr[1:0], m_dma_rlast,
                    irq_sel[31:16], irq_sel[7:2], chunk_m1[12:10],
                    chunk_m1[1:0]};
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
