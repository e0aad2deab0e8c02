// The interrupt port of a design that raises none, tied off (docs/hdl.md 2).
    assign irq_req = 1'b0;
    assign irq_msi = 1'b0;
    assign irq_vector = 11'd0;
    assign intx = 1'b0;
