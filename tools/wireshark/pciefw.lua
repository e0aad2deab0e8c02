-- Wireshark/tshark dissector for pciefw traces (docs/protocol.md section 6).
--
--   tshark -X lua_script:tools/wireshark/pciefw.lua -r trace.pcapng -V
--
-- Records are pcapng Enhanced Packet Blocks of link type USER0 (147):
-- a 4-byte pseudo-header (version, direction, record type, reserved), then
-- for a message record (type 0) the frame: a 4-byte little-endian length
-- and a protobuf-encoded pciefw.Message; for a session record (type 1) the
-- text that describes the connection starting there; for a malformed
-- record (type 2) the raw bytes received that were not a valid message.
-- The protobuf decoding below follows protocol/pciefw.proto; keep the
-- field numbers in step with it.

local p = Proto("pciefw", "pciefw PCIe transaction forwarding")

local STATUS = { [0] = "successful", "unsupported-request", "completer-abort",
                 "config-retry", "timeout" }
local BAR_KIND = { [0] = "mem32", "mem64", "io" }
local RESET_KIND = { [0] = "system", "function" }
local GOODBYE = { [0] = "shutdown", "unplug", "busy" }
local ERROR_CODE = { [0] = "protocol", "version", "unexpected", "bad-frame",
                     "busy", "unknown-tag", "limit", "internal" }

-- field number -> { name, type[, enum table | sub-message schema] }
local BAR = { [1] = { "index", "uint" }, [2] = { "kind", "enum", BAR_KIND },
              [3] = { "prefetchable", "bool" }, [4] = { "size", "uint" } }
local MEM_REGION = { [1] = { "guest_address", "uint" }, [2] = { "size", "uint" },
                     [3] = { "fd_offset", "uint" } }
local MESSAGES = {
  [1] = { "hello", { [1] = { "magic", "fixed32" }, [2] = { "version_major", "uint" },
          [3] = { "version_minor", "uint" }, [4] = { "features", "uint" },
          [5] = { "peer_name", "string" }, [6] = { "max_payload", "uint" } } },
  [2] = { "config_read", { [1] = { "tag", "uint" }, [2] = { "offset", "uint" },
          [3] = { "size", "uint" } } },
  [3] = { "config_write", { [1] = { "tag", "uint" }, [2] = { "offset", "uint" },
          [3] = { "data", "bytes" } } },
  [4] = { "mem_read", { [1] = { "tag", "uint" }, [2] = { "bar", "uint" },
          [3] = { "offset", "uint" }, [4] = { "size", "uint" } } },
  [5] = { "mem_write", { [1] = { "bar", "uint" }, [2] = { "offset", "uint" },
          [3] = { "data", "bytes" } } },
  [6] = { "io_read", { [1] = { "tag", "uint" }, [2] = { "bar", "uint" },
          [3] = { "offset", "uint" }, [4] = { "size", "uint" } } },
  [7] = { "io_write", { [1] = { "tag", "uint" }, [2] = { "bar", "uint" },
          [3] = { "offset", "uint" }, [4] = { "data", "bytes" } } },
  [8] = { "completion", { [1] = { "tag", "uint" }, [2] = { "status", "enum", STATUS },
          [3] = { "data", "bytes" } } },
  [9] = { "dma_read", { [1] = { "tag", "uint" }, [2] = { "address", "uint" },
          [3] = { "size", "uint" } } },
  [10] = { "dma_write", { [1] = { "address", "uint" }, [2] = { "data", "bytes" } } },
  [11] = { "intx", { [1] = { "asserted", "bool" } } },
  [12] = { "msi", { [1] = { "vector", "uint" } } },
  [13] = { "msix", { [1] = { "vector", "uint" } } },
  [14] = { "device_description", {
          [1] = { "vendor_id", "uint" }, [2] = { "device_id", "uint" },
          [3] = { "subsystem_vendor_id", "uint" }, [4] = { "subsystem_id", "uint" },
          [5] = { "class_code", "uint" }, [6] = { "revision", "uint" },
          [7] = { "bar", "message", BAR }, [8] = { "msi_vectors", "uint" },
          [9] = { "msix_vectors", "uint" }, [10] = { "msix_table_bar", "uint" },
          [11] = { "msix_table_offset", "uint" }, [12] = { "msix_pba_bar", "uint" },
          [13] = { "msix_pba_offset", "uint" }, [14] = { "intx_pin", "uint" } } },
  [15] = { "reset", { [1] = { "tag", "uint" }, [2] = { "kind", "enum", RESET_KIND } } },
  [16] = { "goodbye", { [1] = { "reason", "enum", GOODBYE }, [2] = { "text", "string" } } },
  [17] = { "error", { [1] = { "code", "enum", ERROR_CODE }, [2] = { "text", "string" } } },
  [18] = { "memory_map", { [1] = { "region", "message", MEM_REGION } } },
  [19] = { "bus_master", { [1] = { "enabled", "bool" } } },
  [20] = { "ring_setup", { [1] = { "region_size", "uint" } } },
  [21] = { "ring_ready", { [1] = { "accepted", "bool" }, [2] = { "reason", "string" } } },
}

local f_version = ProtoField.uint8("pciefw.record_version", "Record version")
local f_dir = ProtoField.uint8("pciefw.direction", "Direction", base.DEC,
                               { [0] = "host to endpoint", [1] = "endpoint to host" })
local f_rtype = ProtoField.uint8("pciefw.record_type", "Record type", base.DEC,
                                 { [0] = "message", [1] = "session start",
                                   [2] = "malformed input", [3] = "note" })
local f_session = ProtoField.string("pciefw.session", "Session")
local f_note = ProtoField.string("pciefw.note", "Note on the message before")
local f_raw = ProtoField.bytes("pciefw.raw", "Raw bytes received")
local f_len = ProtoField.uint32("pciefw.length", "Frame length")
local f_kind = ProtoField.string("pciefw.kind", "Kind")
local f_field = ProtoField.string("pciefw.field", "Field")
local f_tag = ProtoField.uint32("pciefw.tag", "Tag")
local f_data = ProtoField.bytes("pciefw.data", "Data")
-- The RTL bridge's notes (docs/hdl.md 7): the simulation cycle of the
-- transaction's first handshake, and its time in the waveform.
local f_sim_cycle = ProtoField.uint64("pciefw.sim_cycle", "Simulation cycle")
local f_sim_ns = ProtoField.uint64("pciefw.sim_time_ns", "Simulation time (ns)")
p.fields = { f_version, f_dir, f_rtype, f_session, f_note, f_raw, f_len, f_kind, f_field,
             f_tag, f_data, f_sim_cycle, f_sim_ns }

local e_malformed = ProtoExpert.new("pciefw.malformed", "Malformed pciefw message",
                                    expert.group.MALFORMED, expert.severity.ERROR)
local e_recorded = ProtoExpert.new("pciefw.malformed_input",
                                   "Malformed input recorded by the receiver",
                                   expert.group.MALFORMED, expert.severity.WARN)
local e_session = ProtoExpert.new("pciefw.session_start", "A new session starts",
                                  expert.group.SEQUENCE, expert.severity.NOTE)
p.experts = { e_malformed, e_recorded, e_session }

-- Varint at @off: value (UInt64), next offset; nil if it runs off the end.
local function varint(tvb, off, stop)
  local v = UInt64(0)
  local shift = 0
  while off < stop and shift < 64 do
    local b = tvb(off, 1):uint()
    v = v:bor(UInt64(b % 128):lshift(shift))
    off = off + 1
    if b < 128 then return v, off end
    shift = shift + 7
  end
  return nil, off
end

-- Decode fields in [off, stop) with @schema under @tree; false if malformed.
local function decode(tvb, tree, off, stop, schema, summary)
  while off < stop do
    local key, noff = varint(tvb, off, stop)
    if not key then return false end
    local num = key:rshift(3):tonumber()
    local wire = key:band(UInt64(7)):tonumber()
    local spec = schema[num] or { "field_" .. num, "unknown" }
    local name, kind = spec[1], spec[2]
    if wire == 0 then
      local v, vend = varint(tvb, noff, stop)
      if not v then return false end
      local shown = tostring(v)
      if kind == "enum" then
        shown = (spec[3][v:tonumber()] or "unknown") .. " (" .. shown .. ")"
      elseif kind == "bool" then
        shown = v:tonumber() ~= 0 and "true" or "false"
      elseif name == "offset" or name == "address" or name == "size" then
        shown = "0x" .. v:tohex():gsub("^0+(.)", "%1")
      end
      local item = tree:add(f_field, tvb(off, vend - off), name .. ": " .. shown)
      if name == "tag" then tree:add(f_tag, tvb(noff, vend - noff), v:tonumber()) end
      table.insert(summary, name .. "=" .. shown)
      off = vend
    elseif wire == 5 then
      if noff + 4 > stop then return false end
      local v = tvb(noff, 4):le_uint()
      tree:add(f_field, tvb(off, noff + 4 - off), string.format("%s: 0x%08x", name, v))
      off = noff + 4
    elseif wire == 1 then
      if noff + 8 > stop then return false end
      tree:add(f_field, tvb(off, noff + 8 - off), name .. ": " .. tostring(tvb(noff, 8):le_uint64()))
      off = noff + 8
    elseif wire == 2 then
      local len, dstart = varint(tvb, noff, stop)
      if not len then return false end
      len = len:tonumber()
      if dstart + len > stop then return false end
      if kind == "message" then
        local sub = tree:add(f_field, tvb(off, dstart + len - off), name)
        if not decode(tvb, sub, dstart, dstart + len, spec[3], {}) then return false end
      elseif kind == "string" then
        local s = len > 0 and tvb(dstart, len):string() or ""
        tree:add(f_field, tvb(off, dstart + len - off), name .. ": \"" .. s .. "\"")
        table.insert(summary, name .. "=\"" .. s .. "\"")
      else
        local item = tree:add(f_field, tvb(off, dstart + len - off),
                              name .. ": " .. len .. " bytes")
        if len > 0 then item:add(f_data, tvb(dstart, len)) end
        table.insert(summary, name .. "=" .. len .. "B")
      end
      off = dstart + len
    else
      return false
    end
  end
  return true
end

function p.dissector(tvb, pinfo, tree)
  local total = tvb:len()
  if total < 4 then return 0 end
  pinfo.cols.protocol = "pciefw"
  local t = tree:add(p, tvb(), "pciefw")
  t:add(f_version, tvb(0, 1))
  local dir = tvb(1, 1):uint()
  t:add(f_dir, tvb(1, 1))
  local rtype = tvb(2, 1):uint()
  t:add(f_rtype, tvb(2, 1))
  if rtype == 1 then
    local text = total > 4 and tvb(4, total - 4):string() or ""
    t:add(f_session, tvb(4, total - 4), text)
    t:add_proto_expert_info(e_session, text)
    pinfo.cols.src = "-"
    pinfo.cols.dst = "-"
    pinfo.cols.info = "--- session: " .. text
    return total
  end
  pinfo.cols.src = dir == 0 and "host" or "endpoint"
  pinfo.cols.dst = dir == 0 and "endpoint" or "host"
  if rtype == 3 then
    local text = total > 4 and tvb(4, total - 4):string() or ""
    local note = t:add(f_note, tvb(4, total - 4), text)
    local cycle, ns = text:match("^rtl: .-cycle (%d+) %((%d+) ns%)")
    if cycle then
      note:add(f_sim_cycle, tvb(4, total - 4), UInt64(cycle))
      note:add(f_sim_ns, tvb(4, total - 4), UInt64(ns))
    end
    pinfo.cols.info = "^ " .. text
    return total
  end
  if rtype == 2 then
    if total > 4 then t:add(f_raw, tvb(4, total - 4)) end
    t:add_proto_expert_info(e_recorded, (total - 4) .. " bytes that were not a valid message")
    pinfo.cols.info = "MALFORMED " .. (total - 4) .. " bytes"
    return total
  end
  if total < 8 then return 0 end
  local len = tvb(4, 4):le_uint()
  t:add_le(f_len, tvb(4, 4))
  if 8 + len > total then
    t:add_proto_expert_info(e_malformed, "frame longer than the record")
    return total
  end
  local key, off = varint(tvb, 8, 8 + len)
  if not key or key:band(UInt64(7)):tonumber() ~= 2 then
    t:add_proto_expert_info(e_malformed, "not a pciefw.Message")
    return total
  end
  local num = key:rshift(3):tonumber()
  local mlen, start = varint(tvb, off, 8 + len)
  if not mlen or start + mlen:tonumber() > 8 + len then
    t:add_proto_expert_info(e_malformed, "truncated message")
    return total
  end
  local msg = MESSAGES[num]
  local kind = msg and msg[1] or ("unknown kind " .. num)
  t:add(f_kind, tvb(8, len), kind)
  local summary = {}
  if msg and not decode(tvb, t, start, start + mlen:tonumber(), msg[2], summary) then
    t:add_proto_expert_info(e_malformed, "bad " .. kind .. " fields")
  end
  pinfo.cols.info = kind .. " " .. table.concat(summary, " ")
  return total
end

local encap = (wtap_encaps and wtap_encaps.USER0) or wtap.USER0
DissectorTable.get("wtap_encap"):add(encap, p)
