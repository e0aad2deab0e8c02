// pf_minimal: the smallest device worth a guest, in Verilog -- a skeleton
// to copy (docs/hdl.md 3).  BAR0 holds one read-write register at 0x0 and
// a constant at 0x4; there is no DMA and no interrupt.  Try it:
//   ./dev try hdl-verilog,src=hdl/verilog/pf_minimal.v,device=0xbeef
`default_nettype none

module pf_minimal (
`include "pf_ports.vh"
);
    reg [31:0] value;
    reg        bvalid, rvalid;
    reg [31:0] rdata;
    // One write and one read at a time: take each when nothing is pending.
    wire       wr = s_bar0_awvalid && s_bar0_wvalid && !bvalid;
    wire       rd = s_bar0_arvalid && !rvalid;

    assign s_bar0_awready = wr;
    assign s_bar0_wready = wr;
    assign s_bar0_bvalid = bvalid;
    assign s_bar0_bresp = 2'b00;                // OKAY
    assign s_bar0_arready = rd;
    assign s_bar0_rvalid = rvalid;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = rdata;
    assign busy = 1'b0;                         // no work of its own

    always @(posedge clk) begin
        if (!rst_n) begin
            value <= 32'd0;
            bvalid <= 1'b0;
            rvalid <= 1'b0;
            rdata <= 32'd0;
        end else begin
            if (wr) begin
                // The byte strobes say which bytes the guest wrote.
                if (s_bar0_awaddr[11:2] == 10'd0) begin
                    if (s_bar0_wstrb[0]) value[7:0] <= s_bar0_wdata[7:0];
                    if (s_bar0_wstrb[1]) value[15:8] <= s_bar0_wdata[15:8];
                    if (s_bar0_wstrb[2]) value[23:16] <= s_bar0_wdata[23:16];
                    if (s_bar0_wstrb[3]) value[31:24] <= s_bar0_wdata[31:24];
                end
                bvalid <= 1'b1;
            end else if (s_bar0_bready) begin
                bvalid <= 1'b0;
            end
            if (rd) begin
                rdata <= s_bar0_araddr[11:2] == 10'd0 ? value :
                         s_bar0_araddr[11:2] == 10'd1 ? 32'h600dcafe : 32'd0;
                rvalid <= 1'b1;
            end else if (s_bar0_rready) begin
                rvalid <= 1'b0;
            end
        end
    end

`include "pf_no_dma.vh"
`include "pf_no_irq.vh"

    // Inputs a register file of two words does not look at.
    // verilator lint_off UNUSEDSIGNAL
    wire unused = &{1'b0, s_bar0_awaddr[31:12], s_bar0_awaddr[1:0],
                    s_bar0_araddr[31:12], s_bar0_araddr[1:0], m_dma_awready,
                    m_dma_wready, m_dma_bresp, m_dma_bvalid, m_dma_arready,
                    m_dma_rdata, m_dma_rresp, m_dma_rlast, m_dma_rvalid, irq_ack};
    // verilator lint_on UNUSEDSIGNAL
endmodule

`default_nettype wire
