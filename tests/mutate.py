#!/usr/bin/python3
"""Mutation testing: does the suite fail when behaviour breaks?

  tests/mutate.py [--list] [--only NAME]... [--keep] [--timeout S]

Each mutant below is one small, meaningful change to the endpoint, the
protocol library or the QEMU device (a dropped check, a wrong order, a
halved counter).  For each, the script applies it to a scratch copy of the
work tree (tracked and new files, never the tree itself), builds what it
touches, runs the tests that should notice, and reports whether they did:
"killed" (a test failed), "SURVIVED" (every test passed: a gap in the
suite, or an equivalent mutant, which the list says with why), or
"stillborn" (it did not build).  The last line is the score.  A race
mutant names how many runs its test gets: it is killed only if the test
fails in every one.

Endpoint and library mutants build in the scratch copy's own build/ (gcc);
mutants of the QEMU device and of the protocol library (which QEMU compiles
in) are built by qemu-pciefw/build-qemu.sh into the shared QEMU tree, which
is rebuilt from the real work tree at the end.
Run it on a quiet machine or give --timeout room: tests run as in the suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = "/usr/bin/python3"


@dataclass
class Mutant:
    name: str
    path: str            # file, relative to the repository
    old: str             # text that occurs exactly once in it
    new: str
    tests: list          # ("meson", test name) or ("pytest", node or -k args)
    why: str = ""        # what behaviour it breaks
    equivalent: str = ""  # if it cannot be killed: why not
    runs: int = 1        # a race: killed only if a test fails every run

    @property
    def in_qemu(self):
        """QEMU compiles the device and the protocol library it shares."""
        return self.path.startswith(("qemu-pciefw/", "protocol/"))

    @property
    def in_endpoint(self):
        return not self.path.startswith("qemu-pciefw/")


def meson(name):
    return ("meson", name)


def pytest(*args):
    return ("pytest",) + args


MUTANTS = [
    # --- the six of issue 13's audit ---
    Mutant("testdev-inv-returns-scratch", "endpoint/models/testdev.c",
           "set_reg32(t, REG_INV, ~reg32(t, REG_SCRATCH));",
           "set_reg32(t, REG_INV, reg32(t, REG_SCRATCH));",
           [meson("endpoint-testdev")], "INV must be ~SCRATCH"),
    Mutant("testdev-msix-before-dma-data", "endpoint/models/testdev.c",
           "\t} else if (pf_dma_write(t->dev, t->dma_dst, data, len) < 0) {\n"
           "\t\tdma_finish(t, DMA_ST_ERROR);\n\t\treturn;\n\t}\n"
           "\tdma_finish(t, DMA_ST_DONE);",
           "\t} else {\n\t\tdma_finish(t, DMA_ST_DONE);\n"
           "\t\tpf_dma_write(t->dev, t->dma_dst, data, len);\n\t\treturn;\n\t}\n"
           "\tdma_finish(t, DMA_ST_DONE);",
           [meson("endpoint-testdev")],
           "spec 5.1: DMA data lands before the interrupt that reports it"),
    Mutant("nic-drops-every-10th-rx-frame", "endpoint/models/nic.c",
           "\tidx = n->rx.head;\n\ts = &n->rx_slots[idx];",
           "\tstatic unsigned int nth;\n\n\tif (++nth % 10 == 0)\n\t\treturn;\n"
           "\tidx = n->rx.head;\n\ts = &n->rx_slots[idx];",
           [meson("endpoint-nic")], "nic 3.1: every frame with a descriptor lands"),
    Mutant("nic-ignores-itr", "endpoint/models/nic.c",
           "if (n->itr == 0 || since >= gap) {",
           "if (1 || n->itr == 0 || since >= gap) {",
           [meson("endpoint-nic")], "nic 4: one interrupt per vector per ITR"),
    Mutant("nic-rx-bytes-halved", "endpoint/models/nic.c",
           "n->stats[RX_BYTES] += len;", "n->stats[RX_BYTES] += len / 2;",
           [meson("endpoint-nic")], "nic 6: RX_BYTES counts received bytes"),
    Mutant("codec-overlapping-bars-accepted", "protocol/codec.c",
           "\t\tif (used & slots)\n",
           "\t\tif (0 && (used & slots))\n",
           [pytest("tests/integration/test_qemu_device.py", "-k",
                   "description_rules")],
           "spec 4.2: BARs may not overlap slots", ),
    # --- our own: protocol library ---
    Mutant("codec-msix-offset-unaligned-accepted", "protocol/codec.c",
           "if ((d->msix_table_offset & 7) || (d->msix_pba_offset & 7))",
           "if (0 && ((d->msix_table_offset & 7) || (d->msix_pba_offset & 7)))",
           [pytest("tests/integration/test_qemu_device.py", "-k",
                   "description_rules")], "spec 4.2: MSI-X table 8-aligned"),
    Mutant("codec-intx-pin-5-accepted", "protocol/codec.c",
           "if (d->intx_pin > 4)", "if (d->intx_pin > 5)",
           [pytest("tests/integration/test_qemu_device.py", "-k",
                   "description_rules")], "spec 4.2: INTx pin 0..4"),
    Mutant("codec-config-offset-4096-accepted", "protocol/codec.c",
           "if (offset >= PCIEFW_CONFIG_SPACE)",
           "if (offset > PCIEFW_CONFIG_SPACE)",
           [meson("codec"), pytest("tests/integration/test_error_table.py")],
           "spec 1.3: config offsets 0..4095"),
    # --- our own: endpoint ---
    Mutant("server-busy-without-reading-the-old-host", "endpoint/server.c",
           "\tpf_conn_read(srv->conn, HANGUP_READS, true);\n",
           "\tpf_conn_read(srv->conn, 1, false);\n",
           [meson("endpoint-bad-input")],
           "spec 2.4: only a live host makes the device busy"),
    Mutant("testdev-reset-not-counted", "endpoint/models/testdev.c",
           "pf_le_store(t->regs + REG_RESET_COUNT, 4, t->reset_count);",
           "pf_le_store(t->regs + REG_RESET_COUNT, 4, 1);",
           [meson("endpoint-testdev"),
            pytest("tests/integration/test_qemu_device.py", "-k", "reset")],
           "testdev.md: RESET_COUNT counts guest-visible resets"),
    Mutant("testdev-dma-fill-ignores-scratch", "endpoint/models/testdev.c",
           "memset(piece, t->regs[REG_SCRATCH], sizeof(piece));",
           "memset(piece, 0, sizeof(piece));",
           [pytest("tests/integration/test_qemu_device.py", "-k", "dma_fill")],
           "testdev.md: FILL writes the SCRATCH byte"),
    # --- our own: the RTL bridge (docs/hdl.md) ---
    Mutant("rtl-byte-strobe-dropped", "endpoint/models/rtl.c",
           "rec.strb = (uint8_t)(((1u << size) - 1) << (off & 3));",
           "rec.strb = 0xf;",
           [pytest("tests/integration/test_hdl_bridge.py", "-k", "skeleton"),
            pytest("tests/integration/test_hdl_guest.py")],
           "hdl 5.1: a 1- or 2-byte write strobes only its bytes"),
    Mutant("rtl-dma-response-ignored", "endpoint/models/rtl.c",
           "\t\tdma_answer(r, d->id, PF_RTL_SLVERR, NULL, 0);",
           "\t\tdma_answer(r, d->id, PF_RTL_OKAY, r->payload, d->len);",
           [pytest("tests/integration/test_hdl_hostile.py", "-k", "outside"),
            pytest("tests/integration/test_hdl_guest.py")],
           "hdl 5.3: a DMA read the host refused is SLVERR, not data"),
    Mutant("rtl-no-reset-on-flr", "endpoint/models/rtl.c",
           "\t/* The framework cancelled DMA and the deferred read already. */\n",
           "\tif (kind == PF_RESET_FUNCTION)\n\t\treturn;\n",
           [pytest("tests/integration/test_hdl_bridge.py", "-k", "reset_asserted")],
           "hdl 1: rst_n is asserted on a function-level reset"),
    # --- issue 21 item 14: the e1000 ---
    Mutant("e1000-ipv6-tso-paylen-counts-header", "endpoint/models/e1000_offload.c",
           "put_be16(s + c->ipcss + 4, (uint16_t)(flen - c->ipcss - 40));",
           "put_be16(s + c->ipcss + 4, (uint16_t)(flen - c->ipcss));",
           [meson("endpoint-e1000")],
           "e1000 6.4: an IPv6 segment's payload length leaves its header out"),
    Mutant("e1000-rx-bad-l4-csum-reported-good", "endpoint/models/e1000_offload.c",
           "\t*status |= RXD_TCPCS;\n\tif (pf_csum_fold(sum) != 0xffff)\n"
           "\t\t*errors |= RXE_TCPE;\n",
           "\t*status |= RXD_TCPCS;\n",
           [pytest("tests/integration/test_e1000_diff.py", "-k", "rx_offload")],
           "e1000 5.3: a wrong TCP/UDP checksum is flagged (TCPE), not passed as good"),
    Mutant("e1000-stats-high-half-keeps-pair", "endpoint/models/e1000.c",
           "\t\te->stats[idx - 1] = 0;\n", "",
           [meson("endpoint-e1000")],
           "e1000 3.8: reading GORCH/GOTCH/TORH/TOTH clears the pair"),
    Mutant("e1000-vlan-strip-without-vp", "endpoint/models/e1000.c",
           "\t\tstatus |= RXD_VP;\n", "",
           [pytest("tests/integration/test_e1000_diff.py", "-k", "rx_offload")],
           "e1000 5.2: a stripped tag sets VP in the descriptor"),
    Mutant("e1000-tx-reset-keeps-batches", "endpoint/models/e1000.c",
           "\te->tx_q_head = e->tx_q_len = 0;\n", "",
           [meson("endpoint-e1000")],
           "e1000 7: a TX ring restart abandons the batches in flight"),
    Mutant("e1000-tso-ip-csum-over-old-field", "endpoint/models/e1000_offload.c",
           "\t\t\tput_be16(s + c->ipcso, 0);\n", "",
           [meson("endpoint-e1000")],
           "e1000 6.4: each segment's IP checksum is computed afresh"),
    # --- our own: the e1000 ---
    Mutant("e1000-rx-fetch-failure-keeps-later-reads", "endpoint/models/e1000.c",
           "\t\te->rx.gen++;\n\t\te->rx_fetched = e->rx_valid;\n", "",
           [meson("endpoint-e1000")],
           "e1000 7: no frame goes to a descriptor slot that was never read"),
    Mutant("e1000-tso-segments-unbounded", "endpoint/models/e1000_offload.c",
           "/ job->ctx.mss > E1K_TSO_SEGS_MAX)", "/ job->ctx.mss > 65536u)",
           [meson("endpoint-e1000")],
           "e1000 7: one TSO packet makes at most 1024 segments"),
    Mutant("e1000-ims-ics-drop-bits-5-8", "endpoint/models/e1000.h",
           "#define ICR_VALID  0x0001ffffu", "#define ICR_VALID  0x0001f6dfu",
           [pytest("tests/integration/test_e1000_diff.py", "-k", "registers_against")],
           "e1000 4: IMS and ICS keep bits 16:0 (e1000_intr_test sets 0-9)"),
    Mutant("e1000-fcah-keeps-32-bits", "endpoint/models/e1000.c",
           "\tcase E1K_FCAH: case E1K_FCT:", "\tcase E1K_FCT:",
           [pytest("tests/integration/test_e1000_diff.py", "-k", "registers_against")],
           "e1000 3: FCAH keeps bits 15:0 (e1000_reg_test)"),
    Mutant("e1000-no-revival", "endpoint/models/e1000.c",
           "\tif (kind == PF_RESET_FUNCTION && e->session_fresh)\n\t\trevive(e);\n", "",
           [pytest("tests/integration/test_e1000_guest.py", "-k",
                   "reset_while_endpoint_gone")],
           "e1000 3.1: a replaced endpoint leads the stock driver to reset it"),
    # --- issue 21's audit: rings, TLS, MSI-X windows ---
    Mutant("ring-host-waiting-for-room-never-kicked", "endpoint/stream_ring.c",
           "\t\tif (pf_ring_producer_needs_kick(&r->rx))\n"
           "\t\t\tpf_doorbell_ring(r->peer_bell);\n",
           "",
           [pytest("tests/integration/test_shm_rings_wire.py", "-k",
                   "waiting_for_room")],
           "spec 11.4: a consumer that read kicks a producer waiting for room"),
    # A race: the test endpoint pauses between the two steps (protocol/ring.c).
    Mutant("ring-sleep-checked-before-announced", "protocol/ring.c",
           "\tSTORE_REL(&r->ctl->consumer_asleep, 1);\n\tFULL_FENCE();\n"
           "\tTEST_SLEEP_PAUSE();\n"
           "\tif (pf_ring_readable(r) || r->corrupt) {\n"
           "\t\tSTORE_REL(&r->ctl->consumer_asleep, 0);\n\t\treturn false;\n"
           "\t}\n\treturn true;",
           "\tif (pf_ring_readable(r) || r->corrupt) {\n"
           "\t\tSTORE_REL(&r->ctl->consumer_asleep, 0);\n\t\treturn false;\n"
           "\t}\n\tTEST_SLEEP_PAUSE();\n"
           "\tSTORE_REL(&r->ctl->consumer_asleep, 1);\n\treturn true;",
           [pytest("tests/integration/test_shm_rings_wire.py", "-k",
                   "no_wake_up_is_lost")],
           "spec 11.3: announce sleep, fence, then look (no lost wake-up)",
           runs=3),
    # --- issue 23: binary register records and the polling rule ---
    Mutant("regrec-direction-unchecked", "protocol/rx.c",
           "\tif (!record_direction_ok(rx, msg.m.body_case))",
           "\tif (0 && !record_direction_ok(rx, msg.m.body_case))",
           [meson("regrec"),
            pytest("tests/integration/test_error_table.py", "-k",
                   "binary-record-direction")],
           "spec 11.7: records carry requests to the endpoint, completions "
           "to the host"),
    Mutant("regrec-config-offset-truncated", "protocol/regrec.c",
           "\t    !zeros(rec + 12, 4))\n",
           "\t    0)\n",
           [meson("regrec")],
           "spec 11.7: a config record's offset fits its message's 32 bits; "
           "a larger one is malformed, never cut to its low half"),
    Mutant("regrec-held-as-a-frame", "endpoint/conn.c",
           "pf_defer_push(&c->held, c->rx.record, PF_REGREC_SIZE, true,",
           "pf_defer_push(&c->held, c->rx.record, PF_REGREC_SIZE, false,",
           [pytest("tests/integration/test_reg_records_wire.py", "-k",
                   "deferred_read")],
           "spec 5.3, 11.7: a record behind a deferred read is held and "
           "handled in its turn"),
    Mutant("regrec-data-past-size-accepted", "protocol/regrec.c",
           "\tif (!zeros(rec + 16 + (carries ? size : 0),",
           "\tif (0 && !zeros(rec + 16 + (carries ? size : 0),",
           [meson("regrec")],
           "spec 11.7: a record's bytes past its size are zero"),
    Mutant("poll-rule-uses-the-median", "protocol/ring.c",
           "\treturn g[PF_POLL_GAPS * 3 / 4 - 1];",
           "\treturn g[PF_POLL_GAPS / 2 - 1];",
           [meson("poll-rule")],
           "spec 11.4: the window follows the gap three in four were within"),
    # Since the TLS stream owns its readiness (issue 22) the stream itself
    # turns plain text for such a host; busy.c's refusal goes through it.
    Mutant("busy-plain-host-of-tls-endpoint-unanswered", "endpoint/tls.c",
           "\tif (r == PF_ERR_NO_HELLO)\n"
           "\t\tt->plain = true;    /* a plain-text host reads why in plain text */\n"
           "\telse if (r == PF_OK)",
           "\tif (r == PF_OK)",
           [pytest("tests/integration/test_tls.py", "-k",
                   "plain_text_host_is_told_busy")],
           "spec 1.5, 2.4: a plain-text second host reads ERROR_BUSY in clear"),
    Mutant("qemu-msix-straddling-access-not-refused",
           "qemu-pciefw/hw/pciefw/pciefw-msix.c",
           "        if (in_bar < start || in_bar + size > start + len) {\n"
           "            return NULL;\n        }\n",
           "",
           [pytest("tests/integration/test_qemu_device.py", "-k",
                   "across_an_edge or msix_delivery")],
           "an access straddling the MSI-X table or PBA is refused",
           equivalent="unreachable: QEMU's memory core hands the window only "
           "naturally aligned accesses of 1-8 bytes (TCG and address_space_rw "
           "split an unaligned one) and the table and PBA edges are 8-byte "
           "aligned, so no access straddles one; "
           "test_msix_access_across_an_edge_is_served_in_aligned_pieces shows "
           "the split"),
    # --- our own: the QEMU device ---
    Mutant("qemu-intx-left-asserted-on-drop", "qemu-pciefw/hw/pciefw/pciefw.c",
           "    s->state = PCIEFW_DOWN;\n    if (s->desc.intx_pin) {\n"
           "        pciefw_set_intx(s, false);\n    }\n}",
           "    s->state = PCIEFW_DOWN;\n}",
           [pytest("tests/integration/test_qemu_robustness.py", "-k",
                   "refused_reconnect")],
           "spec 7: a dropped connection never leaves INTx asserted"),
    Mutant("qemu-no-reentrancy-guard", "qemu-pciefw/hw/pciefw/pciefw-conn.c",
           "    guard->engaged_in_io = true;\n    c->dispatching = true;",
           "    c->dispatching = false;",
           [pytest("tests/integration/test_qemu_robustness.py", "-k",
                   "own_bar or device_itself")],
           "spec 3.2: DMA never reaches the function itself"),
    Mutant("qemu-dma-into-mmconfig", "qemu-pciefw/hw/pciefw/pciefw.c",
           "    if (pciefw_dma_hits_config(pdev, addr, len, is_write)) {",
           "    if (0 && pciefw_dma_hits_config(pdev, addr, len, is_write)) {",
           [pytest("tests/integration/test_qemu_robustness.py", "-k",
                   "config_space")],
           "spec 3.2: DMA never reaches the configuration-space window"),
    Mutant("qemu-dma-without-bus-master", "qemu-pciefw/hw/pciefw/pciefw.c",
           "    if (!(pci_get_word(pdev->config + PCI_COMMAND) & "
           "PCI_COMMAND_MASTER)) {\n        return \"bus mastering is off\";",
           "    if (0) {\n        return \"bus mastering is off\";",
           [pytest("tests/integration/test_qemu_device.py", "-k",
                   "without_bus_master")],
           "spec 3.2: Bus Master Enable clear refuses DMA"),
    Mutant("qemu-unread-output-unbounded", "qemu-pciefw/hw/pciefw/pciefw-conn.c",
           "        pf_buf_used(&c->out) > PCIEFW_CONN_TX_LIMIT) {",
           "        0) {",
           [pytest("tests/integration/test_qemu_robustness.py", "-k",
                   "never_reads")],
           "spec 7.2: unread output beyond 32 MiB fails the connection"),
    Mutant("qemu-dma-during-reset", "qemu-pciefw/hw/pciefw/pciefw.c",
           "    if (s->resetting) {\n        return \"the function is being reset\";",
           "    if (0) {\n        return \"the function is being reset\";",
           [pytest("tests/integration/test_qemu_robustness.py", "-k",
                   "function_reset")],
           "spec 3.2: no DMA while a reset is forwarded"),
    Mutant("qemu-ring-setup-after-a-request",
           "qemu-pciefw/hw/pciefw/pciefw-conn.c",
           "    /* A host's message before its RingSetup ends that place (11.1). */\n"
           "    c->ring_setup_allowed = false;\n",
           "",
           [pytest("tests/integration/test_epc_rings_wire.py", "-k",
                   "first_after")],
           "spec 11.1: RingSetup only as the host's first message after the "
           "description"),
    Mutant("qemu-completion-size-unchecked",
           "qemu-pciefw/hw/pciefw/pciefw-conn.c",
           "    if (cpl->status == PCIEFW__STATUS__STATUS_SUCCESSFUL &&\n"
           "        cpl->data.len != req->size) {",
           "    if (0) {",
           [pytest("tests/integration/test_error_table.py")],
           "spec 3.4: a completion carries exactly the bytes read"),
    # --- issue 23 items 4 and 5: DMA in place, write-backs by pass ---
    Mutant("dma-map-read-passes-queued-read", "endpoint/device.c",
           "dev->n_maps >= PF_DMA_MAX_MAPS || (!write && dev->dma_head))",
           "dev->n_maps >= PF_DMA_MAX_MAPS)",
           [meson("dma-in-place")],
           "device.h: a read in place never passes a read the model issued "
           "before it (reads reach a model in issue order)"),
    Mutant("dma-map-outlives-memory-map", "endpoint/device.c",
           "\tmaps_end_all(dev, \"when a new memory map came\");\n", "",
           [meson("dma-in-place")],
           "device.h: a mapping ends before the memory it points into is "
           "unmapped"),
    Mutant("nic-rx-write-back-survives-reset", "endpoint/models/nic.c",
           "\t/* Used descriptors not written back yet belong to the old ring. */\n"
           "\tn->rx_wb_count = 0;\n", "",
           [meson("rx-write-back")],
           "nic 3.1: a reset drops the pass's write-backs with the ring"),
    Mutant("e1000-rx-write-back-per-descriptor", "endpoint/models/e1000.c",
           "\tif (e->rx_wb_count && idx == 0)\n\t\trx_wb_write(e);",
           "\tif (e->rx_wb_count)\n\t\trx_wb_write(e);",
           [meson("rx-write-back")],
           "e1000 5.2: the descriptors of one pass go back in one DMA write"),
]


def run(cmd, cwd, env=None, timeout=None, log=None):
    """(exit status or 'timeout', output tail).  A command that times out,
    or whose run is stopped, gets SIGINT (pytest then stops what its tests
    started), then its whole process group is killed."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            errors="replace", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException as e:
        stop_group(proc)
        if isinstance(e, subprocess.TimeoutExpired):
            return "timeout", ""
        raise
    if log:
        with open(log, "a") as f:
            f.write(f"$ {' '.join(map(str, cmd))}\n{out}\n")
    return proc.returncode, out[-2000:]


def stop_group(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def copy_tree(dest):
    """Tracked and new (not ignored) files of the work tree."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                           cwd=REPO, stdout=subprocess.PIPE, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


class Scratch:
    def __init__(self, keep):
        self.dir = Path(tempfile.mkdtemp(prefix="pfmut-", dir="/tmp"))
        self.keep = keep
        self.log = self.dir / "mutate.log"
        copy_tree(self.dir)
        self.env = dict(os.environ, PATH="/usr/bin:/bin:/usr/sbin:/sbin:"
                        + os.environ.get("PATH", ""))
        self.env["PCIEFW_ENDPOINT"] = str(self.dir / "build" / "endpoint"
                                          / "pciefw-endpoint")
        self.qemu = None

    def setup(self):
        rc, out = run(["meson", "setup", "build"], self.dir, self.env,
                      log=self.log)
        if rc != 0:
            raise SystemExit(f"mutate: meson setup failed:\n{out}")
        rc, out = self.build()
        if rc != 0:
            raise SystemExit(f"mutate: the unmutated tree does not build:\n{out}")
        self.env.update(guest_env(self.env))

    def build(self):
        return run(["ninja", "-C", "build"], self.dir, self.env, log=self.log)

    def build_qemu(self, tree):
        rc, out = run([str(tree / "qemu-pciefw" / "build-qemu.sh"), "--print-binary"],
                      tree, self.env, log=self.log)
        if rc == 0:
            self.qemu = out.strip().splitlines()[-1]
            self.env["PCIEFW_QEMU"] = self.qemu
        return rc, out

    def test(self, spec, timeout):
        if spec[0] == "meson":
            cmd = ["meson", "test", "-C", "build", "--no-rebuild", spec[1]]
        else:
            cmd = [PY, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"] + list(spec[1:])
        return run(cmd, self.dir, self.env, timeout, self.log)

    def close(self):
        if self.keep:
            print(f"mutate: scratch tree kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def guest_env(env):
    """The guest kernel and image the integration tests use."""
    r = subprocess.run([str(REPO / "tests" / "guest" / "build-guest.sh"), "--print-env"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                       text=True)
    out = {}
    for line in r.stdout.splitlines():
        if "=" in line:
            k, v = line.replace("export ", "").split("=", 1)
            out[k.strip()] = v.strip().strip("'\"")
    return out


def try_mutant(scratch, m, timeout):
    path = scratch.dir / m.path
    original = path.read_text()
    if original.count(m.old) != 1:
        return "stale", f"the text to mutate occurs {original.count(m.old)} times in {m.path}"
    path.write_text(original.replace(m.old, m.new))
    try:
        for build, wanted in ((scratch.build, m.in_endpoint),
                              (lambda: scratch.build_qemu(scratch.dir), m.in_qemu)):
            rc, out = build() if wanted else (0, "")
            if rc != 0:
                return "stillborn", out
        partly = ""
        for spec in m.tests:
            what = spec[1] if spec[0] == "meson" else " ".join(spec[1:])
            fails = [rc for rc in (scratch.test(spec, timeout)[0]
                                   for _ in range(m.runs)) if rc != 0]
            if len(fails) == m.runs:
                note = " (timeout)" if "timeout" in fails else ""
                if m.runs > 1:
                    note += f" ({m.runs} of {m.runs} runs)"
                return "killed", what + note
            if fails:
                partly = f"{what} failed {len(fails)} of {m.runs} runs only"
        return "SURVIVED", partly
    finally:
        path.write_text(original)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--only", action="append", default=[], metavar="NAME",
                    help="run only this mutant (repeatable; a prefix matches)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch tree")
    ap.add_argument("--timeout", type=int, default=900,
                    help="seconds per test command (default 900)")
    args = ap.parse_args()
    chosen = [m for m in MUTANTS
              if not args.only or any(m.name.startswith(o) for o in args.only)]
    if args.list:
        for m in chosen:
            print(f"{m.name:42} {m.path}: {m.why}")
        return 0
    if not chosen:
        ap.error("no mutant matches --only")

    # A stopped run still restores QEMU and removes its scratch tree.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = Scratch(args.keep)
    results = []
    try:
        scratch.setup()
        rc, out = scratch.build_qemu(scratch.dir)
        if rc != 0:
            raise SystemExit(f"mutate: QEMU does not build unmutated:\n{out}")
        # Endpoint and library mutants first, then QEMU's (one rebuild each).
        for m in sorted(chosen, key=lambda m: m.in_qemu):
            t0 = time.monotonic()
            verdict, detail = try_mutant(scratch, m, args.timeout)
            if verdict == "SURVIVED" and m.equivalent:
                verdict, detail = "equivalent", m.equivalent
            results.append((m, verdict))
            print(f"{m.name:42} {verdict:10} {time.monotonic() - t0:5.0f}s  "
                  f"{detail if verdict != 'stillborn' else detail[-300:]}",
                  flush=True)
    finally:
        if any(m.in_qemu for m in chosen):
            print("mutate: rebuilding QEMU from the work tree", flush=True)
            scratch.build_qemu(REPO)
        scratch.close()
    counted = [v for _, v in results if v in ("killed", "SURVIVED")]
    killed = counted.count("killed")
    bad = [m.name for m, v in results if v in ("SURVIVED", "stale", "stillborn")]
    print(f"mutation score: {killed}/{len(counted)} killed"
          + (f"; not killed: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
