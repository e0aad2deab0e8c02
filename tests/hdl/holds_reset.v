// A design held in reset (test_hdl_hostile.py): its logic waits for a clock
// that never locks, so it never leaves reset, whatever rst_n does: it takes
// no write, no read, and answers nothing.
`default_nettype none
// verilator lint_off UNUSEDSIGNAL
module holds_reset (
`include "pf_ports.vh"
);
    assign s_bar0_awready = 1'b0;
    assign s_bar0_wready = 1'b0;
    assign s_bar0_bvalid = 1'b0;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = 1'b0;
    assign s_bar0_rvalid = 1'b0;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = 32'd0;
    assign busy = 1'b0;
`include "pf_no_dma.vh"
`include "pf_no_irq.vh"
endmodule
