// A design that ends the simulation (test_hdl_hostile.py): a write to
// BAR0+0x0 calls $finish.  Reads return 0x0a11fe.
`default_nettype none
// verilator lint_off UNUSEDSIGNAL
module dies (
`include "pf_ports.vh"
);
    reg  bvalid_r, rvalid_r;
    wire wr_go = s_bar0_awvalid && s_bar0_wvalid && !bvalid_r;
    wire rd_go = s_bar0_arvalid && !rvalid_r;

    assign s_bar0_awready = wr_go;
    assign s_bar0_wready = wr_go;
    assign s_bar0_bvalid = bvalid_r;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = rd_go;
    assign s_bar0_rvalid = rvalid_r;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = 32'h000a11fe;
    assign busy = 1'b0;

    always @(posedge clk) begin
        if (!rst_n) begin
            bvalid_r <= 1'b0;
            rvalid_r <= 1'b0;
        end else begin
            if (wr_go)
                bvalid_r <= 1'b1;
            else if (s_bar0_bready)
                bvalid_r <= 1'b0;
            if (rd_go)
                rvalid_r <= 1'b1;
            else if (s_bar0_rready)
                rvalid_r <= 1'b0;
            if (wr_go)
                $finish;
        end
    end
`include "pf_no_dma.vh"
`include "pf_no_irq.vh"
endmodule
