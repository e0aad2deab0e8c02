-- The GHDL side of the RTL bridge's runtime (docs/hdl.md): the testbench
-- hdl/build.py generates (pf_tb) calls these once per clock cycle; they
-- are C functions (pf_rtl_ghdl.c) linked into the simulation.  A design
-- never uses this package itself.
library ieee;
use ieee.std_logic_1164.all;

package pf_rtl is
  -- The design's outputs and inputs, one std_ulogic each, vectors most
  -- significant bit first (pf_rtl_ghdl.c).  Constrained: GHDL passes a
  -- pointer to the elements, and a slice assignment packs a port.
  subtype pf_out_bits is std_ulogic_vector(0 to 511);
  subtype pf_in_bits is std_ulogic_vector(0 to 767);

  -- Attach to the bridge; ok is 0 if this process was not started by it.
  procedure pf_rtl_ghdl_init(bars : integer; ok : out integer);
  attribute foreign of pf_rtl_ghdl_init : procedure is "VHPIDIRECT pf_rtl_ghdl_init";

  -- One cycle: the outputs before the rising edge in, the inputs to apply
  -- after it out.  ctl: bit 0, the simulation is to end; bit 1, the inputs
  -- changed (else i is as before).  Blocks while the design is idle:
  -- simulated time stands still.
  procedure pf_rtl_ghdl_cycle(o : in pf_out_bits; i : inout pf_in_bits;
                              ctl : out integer);
  attribute foreign of pf_rtl_ghdl_cycle : procedure is "VHPIDIRECT pf_rtl_ghdl_cycle";

end package;

package body pf_rtl is
  procedure pf_rtl_ghdl_init(bars : integer; ok : out integer) is
  begin
    report "pf_rtl_ghdl_init is not linked in" severity failure;
  end procedure;

  procedure pf_rtl_ghdl_cycle(o : in pf_out_bits; i : inout pf_in_bits;
                              ctl : out integer) is
  begin
    report "pf_rtl_ghdl_cycle is not linked in" severity failure;
  end procedure;

end package body;
