// A design with two AXI4-Lite BARs (test_hdl_bridge.py): BAR0 and BAR2
// each read their own constant at 0x0 and a register at 0x4.
`default_nettype none
// verilator lint_off UNUSEDSIGNAL
module two_bars (
`include "pf_ports.vh"
    ,
    input  wire [31:0] s_bar2_awaddr,
    input  wire        s_bar2_awvalid,
    output wire        s_bar2_awready,
    input  wire [31:0] s_bar2_wdata,
    input  wire [3:0]  s_bar2_wstrb,
    input  wire        s_bar2_wvalid,
    output wire        s_bar2_wready,
    output wire [1:0]  s_bar2_bresp,
    output wire        s_bar2_bvalid,
    input  wire        s_bar2_bready,
    input  wire [31:0] s_bar2_araddr,
    input  wire        s_bar2_arvalid,
    output wire        s_bar2_arready,
    output wire [31:0] s_bar2_rdata,
    output wire [1:0]  s_bar2_rresp,
    output wire        s_bar2_rvalid,
    input  wire        s_bar2_rready
);
    reg [31:0] reg0, reg2, rdata0, rdata2;
    reg        bvalid0, rvalid0, bvalid2, rvalid2;
    wire wr0 = s_bar0_awvalid && s_bar0_wvalid && !bvalid0;
    wire rd0 = s_bar0_arvalid && !rvalid0;
    wire wr2 = s_bar2_awvalid && s_bar2_wvalid && !bvalid2;
    wire rd2 = s_bar2_arvalid && !rvalid2;

    assign s_bar0_awready = wr0;
    assign s_bar0_wready = wr0;
    assign s_bar0_bvalid = bvalid0;
    assign s_bar0_bresp = 2'b00;
    assign s_bar0_arready = rd0;
    assign s_bar0_rvalid = rvalid0;
    assign s_bar0_rresp = 2'b00;
    assign s_bar0_rdata = rdata0;
    assign s_bar2_awready = wr2;
    assign s_bar2_wready = wr2;
    assign s_bar2_bvalid = bvalid2;
    assign s_bar2_bresp = 2'b00;
    assign s_bar2_arready = rd2;
    assign s_bar2_rvalid = rvalid2;
    assign s_bar2_rresp = 2'b00;
    assign s_bar2_rdata = rdata2;
    assign busy = 1'b0;

    always @(posedge clk) begin
        if (!rst_n) begin
            {reg0, reg2, rdata0, rdata2} <= 128'd0;
            {bvalid0, rvalid0, bvalid2, rvalid2} <= 4'd0;
        end else begin
            if (wr0) begin
                bvalid0 <= 1'b1;
                if (s_bar0_awaddr[11:0] == 12'h004)
                    reg0 <= s_bar0_wdata;
            end else if (s_bar0_bready) begin
                bvalid0 <= 1'b0;
            end
            if (wr2) begin
                bvalid2 <= 1'b1;
                if (s_bar2_awaddr[11:0] == 12'h004)
                    reg2 <= s_bar2_wdata;
            end else if (s_bar2_bready) begin
                bvalid2 <= 1'b0;
            end
            if (rd0) begin
                rvalid0 <= 1'b1;
                rdata0 <= s_bar0_araddr[11:0] == 12'h000 ? 32'hba400000 : reg0;
            end else if (s_bar0_rready) begin
                rvalid0 <= 1'b0;
            end
            if (rd2) begin
                rvalid2 <= 1'b1;
                rdata2 <= s_bar2_araddr[11:0] == 12'h000 ? 32'hba420000 : reg2;
            end else if (s_bar2_rready) begin
                rvalid2 <= 1'b0;
            end
        end
    end
`include "pf_no_dma.vh"
`include "pf_no_irq.vh"
endmodule
