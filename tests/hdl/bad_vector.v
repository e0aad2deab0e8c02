// A design that asks for an interrupt vector the function does not have
// (test_hdl_hostile.py): writing N to BAR0+0x0 requests MSI-X vector 300 N
// times in a row, then vector 1 once.  BAR0+0x4 counts the acknowledges.
`default_nettype none
// verilator lint_off UNUSEDSIGNAL
module bad_vector (
`include "pf_ports.vh"
);
    reg         bvalid_r, rvalid_r, pending;
    reg  [31:0] left, acks;
    wire        wr_go = s_bar0_awvalid && s_bar0_wvalid && !bvalid_r;
    wire        rd_go = s_bar0_arvalid && !rvalid_r;

    assign s_bar0_awready = wr_go;
    assign s_bar0_wready = wr_go;
    assign s_bar0_bvalid = bvalid_r;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = rd_go;
    assign s_bar0_rvalid = rvalid_r;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = acks;
    assign irq_req = pending;
    assign irq_msi = 1'b0;
    assign irq_vector = left == 32'd0 ? 11'd1 : 11'd300;
    assign intx = 1'b0;
    assign busy = pending;

    always @(posedge clk) begin
        if (!rst_n) begin
            bvalid_r <= 1'b0;
            rvalid_r <= 1'b0;
            pending <= 1'b0;
            left <= 32'd0;
            acks <= 32'd0;
        end else begin
            if (wr_go)
                bvalid_r <= 1'b1;
            else if (s_bar0_bready)
                bvalid_r <= 1'b0;
            if (rd_go)
                rvalid_r <= 1'b1;
            else if (s_bar0_rready)
                rvalid_r <= 1'b0;
            if (wr_go && s_bar0_awaddr[11:0] == 12'h000) begin
                pending <= 1'b1;
                left <= s_bar0_wdata;
            end else if (pending && irq_ack) begin
                acks <= acks + 32'd1;
                if (left == 32'd0)
                    pending <= 1'b0;
                else
                    left <= left - 32'd1;
            end
        end
    end
`include "pf_no_dma.vh"
endmodule
