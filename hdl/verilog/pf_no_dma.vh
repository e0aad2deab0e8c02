// The DMA master of a design that makes no DMA, tied off (docs/hdl.md 2).
    assign m_dma_awaddr = 64'd0;
    assign m_dma_awlen = 8'd0;
    assign m_dma_awsize = 3'd2;
    assign m_dma_awburst = 2'b01;
    assign m_dma_awvalid = 1'b0;
    assign m_dma_wdata = 32'd0;
    assign m_dma_wstrb = 4'd0;
    assign m_dma_wlast = 1'b0;
    assign m_dma_wvalid = 1'b0;
    assign m_dma_bready = 1'b0;
    assign m_dma_araddr = 64'd0;
    assign m_dma_arlen = 8'd0;
    assign m_dma_arsize = 3'd2;
    assign m_dma_arburst = 2'b01;
    assign m_dma_arvalid = 1'b0;
    assign m_dma_rready = 1'b0;
