// A design that never answers some reads (test_hdl_hostile.py): BAR0+0x10
// takes the address (ARREADY) and never gives the data (RVALID); BAR0+0x14
// never takes the address.  Other reads return 0x0bad0000 + offset.
`default_nettype none
// verilator lint_off UNUSEDSIGNAL
module never_answers (
`include "pf_ports.vh"
);
    reg         bvalid_r, rvalid_r;
    reg  [31:0] rdata_r;
    wire [11:0] raddr = s_bar0_araddr[11:0];
    wire        wr_go = s_bar0_awvalid && s_bar0_wvalid && !bvalid_r;
    wire        rd_go = s_bar0_arvalid && !rvalid_r && raddr != 12'h014;

    assign s_bar0_awready = wr_go;
    assign s_bar0_wready = wr_go;
    assign s_bar0_bvalid = bvalid_r;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = rd_go;
    assign s_bar0_rvalid = rvalid_r;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = rdata_r;
    assign busy = 1'b0;

    always @(posedge clk) begin
        if (!rst_n) begin
            bvalid_r <= 1'b0;
            rvalid_r <= 1'b0;
            rdata_r <= 32'd0;
        end else begin
            if (wr_go)
                bvalid_r <= 1'b1;
            else if (s_bar0_bready)
                bvalid_r <= 1'b0;
            if (rvalid_r && s_bar0_rready)
                rvalid_r <= 1'b0;
            if (rd_go && raddr != 12'h010) begin
                rvalid_r <= 1'b1;
                rdata_r <= 32'h0bad0000 + {20'd0, raddr};
            end
        end
    end
`include "pf_no_dma.vh"
`include "pf_no_irq.vh"
endmodule
