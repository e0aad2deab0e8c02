-- The GHDL side of the RTL bridge's runtime (docs/hdl.md): the testbench
-- hdl/build.py generates (pf_tb) calls these once per clock cycle; they
-- are C functions (pf_rtl_ghdl.c) linked into the simulation.  A design
-- never uses this package itself.
library ieee;
use ieee.std_logic_1164.all;

package pf_rtl is
  -- The design's outputs and inputs, one std_ulogic each (pf_rtl_ghdl.c).
  type pf_out_bits is array (0 to 511) of std_ulogic;
  type pf_in_bits is array (0 to 767) of std_ulogic;

  -- Attach to the bridge; ok is 0 if this process was not started by it.
  procedure pf_rtl_ghdl_init(bars : integer; ok : out integer);
  attribute foreign of pf_rtl_ghdl_init : procedure is "VHPIDIRECT pf_rtl_ghdl_init";

  -- One cycle: the outputs before the rising edge in, the inputs to apply
  -- after it out; stop is 1 when the simulation is to end.  Blocks while
  -- the design is idle: simulated time stands still.
  procedure pf_rtl_ghdl_cycle(o : in pf_out_bits; i : inout pf_in_bits;
                              stop : out integer);
  attribute foreign of pf_rtl_ghdl_cycle : procedure is "VHPIDIRECT pf_rtl_ghdl_cycle";

  -- Packing helpers for the generated testbench (bit k at pos + k).
  procedure pf_put(o : inout pf_out_bits; pos : natural; v : std_logic_vector);
  function pf_get(i : pf_in_bits; pos, n : natural) return std_logic_vector;
end package;

package body pf_rtl is
  procedure pf_rtl_ghdl_init(bars : integer; ok : out integer) is
  begin
    report "pf_rtl_ghdl_init is not linked in" severity failure;
  end procedure;

  procedure pf_rtl_ghdl_cycle(o : in pf_out_bits; i : inout pf_in_bits;
                              stop : out integer) is
  begin
    report "pf_rtl_ghdl_cycle is not linked in" severity failure;
  end procedure;

  procedure pf_put(o : inout pf_out_bits; pos : natural; v : std_logic_vector) is
    variable n : natural := 0;
  begin
    for k in v'reverse_range loop
      o(pos + n) := v(k);
      n := n + 1;
    end loop;
  end procedure;

  function pf_get(i : pf_in_bits; pos, n : natural) return std_logic_vector is
    variable v : std_logic_vector(n - 1 downto 0);
  begin
    for k in 0 to n - 1 loop
      v(k) := i(pos + k);
    end loop;
    return v;
  end function;
end package body;
