// Tie-offs for a broken design that raises no interrupt (test_hdl_hostile.py).
    assign irq_req = 1'b0;
    assign irq_msi = 1'b0;
    assign irq_vector = 11'd0;
    assign intx = 1'b0;
