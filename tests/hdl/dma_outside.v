// A design whose DMA goes where the guest has no memory
// (test_hdl_hostile.py): BAR0+0x0/0x4 hold a bus address, writing 1 to
// BAR0+0x8 reads 64 bytes there, 2 writes 64 bytes there.  BAR0+0xc shows
// the responses the bus gave: RRESP in bits 1:0, BRESP in bits 9:8, and
// the number of bursts done in bits 31:16.
`default_nettype none
// verilator lint_off UNUSEDSIGNAL
module dma_outside (
`include "pf_ports.vh"
);
    localparam [2:0] IDLE = 3'd0, AR = 3'd1, R = 3'd2, AW = 3'd3, W = 3'd4, B = 3'd5;
    reg         bvalid_r, rvalid_r;
    reg  [31:0] rdata_r;
    reg  [63:0] addr;
    reg  [2:0]  state;
    reg  [3:0]  beat;
    reg  [1:0]  rresp, bresp;
    reg  [15:0] done;
    wire        wr_go = s_bar0_awvalid && s_bar0_wvalid && !bvalid_r;
    wire        rd_go = s_bar0_arvalid && !rvalid_r;
    wire [11:0] waddr = s_bar0_awaddr[11:0];

    assign s_bar0_awready = wr_go;
    assign s_bar0_wready = wr_go;
    assign s_bar0_bvalid = bvalid_r;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = rd_go;
    assign s_bar0_rvalid = rvalid_r;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = rdata_r;
    assign m_dma_araddr = addr;
    assign m_dma_arlen = 8'd15;
    assign m_dma_arsize = 3'd2;
    assign m_dma_arburst = 2'b01;
    assign m_dma_arvalid = state == AR;
    assign m_dma_rready = state == R;
    assign m_dma_awaddr = addr;
    assign m_dma_awlen = 8'd15;
    assign m_dma_awsize = 3'd2;
    assign m_dma_awburst = 2'b01;
    assign m_dma_awvalid = state == AW;
    assign m_dma_wdata = 32'ha5a5a5a5;
    assign m_dma_wstrb = 4'hf;
    assign m_dma_wlast = beat == 4'd15;
    assign m_dma_wvalid = state == W;
    assign m_dma_bready = state == B;
    assign busy = state != IDLE;

    always @(posedge clk) begin
        if (!rst_n) begin
            bvalid_r <= 1'b0;
            rvalid_r <= 1'b0;
            rdata_r <= 32'd0;
            addr <= 64'd0;
            state <= IDLE;
            beat <= 4'd0;
            rresp <= 2'b00;
            bresp <= 2'b00;
            done <= 16'd0;
        end else begin
            if (wr_go)
                bvalid_r <= 1'b1;
            else if (s_bar0_bready)
                bvalid_r <= 1'b0;
            if (rd_go) begin
                rvalid_r <= 1'b1;
                rdata_r <= s_bar0_araddr[11:0] == 12'h00c ?
                           {done, 6'd0, bresp, 6'd0, rresp} : 32'd0;
            end else if (s_bar0_rready) begin
                rvalid_r <= 1'b0;
            end
            if (wr_go && waddr == 12'h000)
                addr[31:0] <= s_bar0_wdata;
            if (wr_go && waddr == 12'h004)
                addr[63:32] <= s_bar0_wdata;
            case (state)
                IDLE: if (wr_go && waddr == 12'h008) begin
                    beat <= 4'd0;
                    state <= s_bar0_wdata[0] ? AR : s_bar0_wdata[1] ? AW : IDLE;
                end
                AR: if (m_dma_arready) state <= R;
                R: if (m_dma_rvalid) begin
                    rresp <= m_dma_rresp;
                    beat <= beat + 4'd1;
                    if (m_dma_rlast) begin
                        done <= done + 16'd1;
                        state <= IDLE;
                    end
                end
                AW: if (m_dma_awready) state <= W;
                W: if (m_dma_wready) begin
                    beat <= beat + 4'd1;
                    if (beat == 4'd15)
                        state <= B;
                end
                B: if (m_dma_bvalid) begin
                    bresp <= m_dma_bresp;
                    done <= done + 16'd1;
                    state <= IDLE;
                end
                default: state <= IDLE;
            endcase
        end
    end
`include "pf_no_irq.vh"
endmodule
