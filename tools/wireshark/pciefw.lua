-- Wireshark/tshark dissector for pciefw traces (docs/protocol.md section 6).
--
--   tshark -X lua_script:tools/wireshark/pciefw.lua -r trace.pcapng -V
--   tshark -X lua_script:tools/wireshark/pciefw.lua -r trace.pcapng \
--       -Y 'pciefw.kind == "mem_write" && pciefw.bar == 0 && pciefw.offset == 0x4'
--
-- Records are pcapng Enhanced Packet Blocks of link type USER0 (147):
-- a 4-byte pseudo-header (version, direction, record type, flags), then
-- for a message record (type 0) the frame: a 4-byte little-endian length
-- and a protobuf-encoded pciefw.Message; for a session record (type 1) the
-- text that describes the connection starting there; for a note (type 3)
-- text about the message before it; for a malformed record (type 2) the
-- raw bytes received that were not a valid message.  A message that
-- travelled as a binary register record (protocol 1.4, docs/protocol.md
-- 11.7) is recorded as the Message it stands for with flag 0x01 set: it
-- has the field pciefw.binary_record ("[binary record]" in the summary).
-- Wireshark's frame
-- numbers are the record numbers pciefw-trace and pciefw-replay print.
--
-- Every field of a message is shown, those at their default value too
-- (protobuf leaves them off the wire: they are added, marked generated),
-- in the order of protocol/pciefw.proto, and each is a filterable field:
-- pciefw.tag, pciefw.bar, pciefw.offset, pciefw.size, pciefw.address,
-- pciefw.vector, pciefw.status, pciefw.data and pciefw.value (data of 1, 2,
-- 4 or 8 bytes as the little-endian value it carries), and pciefw.<kind>.<field>
-- for the rest (pciefw.device_description.vendor_id, pciefw.hello.features,
-- ...).  IDs, addresses and offsets are in hex.  The decoding below follows
-- protocol/pciefw.proto; keep the field numbers in step with it.

local p = Proto("pciefw", "pciefw PCIe transaction forwarding")

local STATUS = { [0] = "successful", "unsupported-request", "completer-abort",
                 "config-retry", "timeout" }
local BAR_KIND = { [0] = "mem32", "mem64", "io" }
local RESET_KIND = { [0] = "system", "function" }
local GOODBYE = { [0] = "shutdown", "unplug", "busy" }
local ERROR_CODE = { [0] = "protocol", "version", "unexpected", "bad-frame",
                     "busy", "unknown-tag", "limit", "internal" }

-- Shared fields: one filter name whatever the message kind.
local COMMON = {
  tag = ProtoField.uint32("pciefw.tag", "Tag", base.DEC),
  bar = ProtoField.uint32("pciefw.bar", "BAR", base.DEC),
  offset = ProtoField.uint64("pciefw.offset", "Offset", base.HEX),
  size = ProtoField.uint64("pciefw.size", "Size", base.DEC),
  address = ProtoField.uint64("pciefw.address", "Address", base.HEX),
  vector = ProtoField.uint32("pciefw.vector", "Vector", base.DEC),
  status = ProtoField.uint32("pciefw.status", "Status", base.DEC, STATUS),
  data = ProtoField.bytes("pciefw.data", "Data"),
}
local f_value = ProtoField.uint64("pciefw.value", "Value (little-endian data)", base.HEX)

-- The uint64 fields of pciefw.proto (the other integers are uint32).
local U64 = { offset = true, address = true, size = true, features = true,
              msix_table_offset = true, msix_pba_offset = true, guest_address = true,
              fd_offset = true, region_size = true, msi_address = true }
-- An integer as its ProtoField takes it.
local function int_value(name, v)
  if U64[name] then return v end
  return v:tonumber()
end

-- Hex: identities, addresses, offsets, bit sets.
local HEX = { offset = true, address = true, vendor_id = true, device_id = true,
              subsystem_vendor_id = true, subsystem_id = true, class_code = true,
              features = true, magic = true, msix_table_offset = true,
              msix_pba_offset = true, guest_address = true, fd_offset = true,
              msi_address = true, msi_data = true, msi_mask = true, data = true }

-- Schema: field number -> { name, type[, enum table | sub-schema] }; a
-- sub-schema has its own .prefix (filter names).
local function schema(prefix, fields)
  fields.prefix = prefix
  return fields
end
local BAR = schema("pciefw.device_description.bar", {
  [1] = { "index", "uint" }, [2] = { "kind", "enum", BAR_KIND },
  [3] = { "prefetchable", "bool" }, [4] = { "size", "uint" } })
local MEM_REGION = schema("pciefw.memory_map.region", {
  [1] = { "guest_address", "uint" }, [2] = { "size", "uint" },
  [3] = { "fd_offset", "uint" } })
local MSIX_ENTRY = schema("pciefw.interrupt_config.msix_entry", {
  [1] = { "vector", "uint" }, [2] = { "address", "uint" },
  [3] = { "data", "uint" }, [4] = { "masked", "bool" } })
local MESSAGES = {
  [1] = { "hello", { [1] = { "magic", "uint" }, [2] = { "version_major", "uint" },
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
  [10] = { "dma_write", { [1] = { "address", "uint" }, [2] = { "data", "memory" } } },
  [11] = { "intx", { [1] = { "asserted", "bool" } } },
  [12] = { "msi", { [1] = { "vector", "uint" } } },
  [13] = { "msix", { [1] = { "vector", "uint" } } },
  [14] = { "device_description", {
          [1] = { "vendor_id", "uint" }, [2] = { "device_id", "uint" },
          [3] = { "subsystem_vendor_id", "uint" }, [4] = { "subsystem_id", "uint" },
          [5] = { "class_code", "uint" }, [6] = { "revision", "uint" },
          [7] = { "bars", "message", BAR }, [8] = { "msi_vectors", "uint" },
          [9] = { "msix_vectors", "uint" }, [10] = { "msix_table_bar", "uint" },
          [11] = { "msix_table_offset", "uint" }, [12] = { "msix_pba_bar", "uint" },
          [13] = { "msix_pba_offset", "uint" }, [14] = { "intx_pin", "uint" } } },
  [15] = { "reset", { [1] = { "tag", "uint" }, [2] = { "kind", "enum", RESET_KIND } } },
  [16] = { "goodbye", { [1] = { "reason", "enum", GOODBYE }, [2] = { "text", "string" } } },
  [17] = { "error", { [1] = { "code", "enum", ERROR_CODE }, [2] = { "text", "string" } } },
  [18] = { "memory_map", { [1] = { "regions", "message", MEM_REGION } } },
  [19] = { "bus_master", { [1] = { "enabled", "bool" } } },
  [20] = { "ring_setup", { [1] = { "region_size", "uint" } } },
  [21] = { "ring_ready", { [1] = { "accepted", "bool" }, [2] = { "reason", "string" } } },
  [22] = { "interrupt_config", {
          [1] = { "msi_enabled", "bool" }, [2] = { "msi_vectors", "uint" },
          [3] = { "msi_address", "uint" }, [4] = { "msi_data", "uint" },
          [5] = { "msi_mask", "uint" }, [6] = { "msix_enabled", "bool" },
          [7] = { "msix_masked", "bool" },
          [8] = { "msix_entries", "message", MSIX_ENTRY } } },
}

local f_version = ProtoField.uint8("pciefw.record_version", "Record version")
local f_dir = ProtoField.uint8("pciefw.direction", "Direction", base.DEC,
                               { [0] = "host to endpoint", [1] = "endpoint to host" })
local f_rtype = ProtoField.uint8("pciefw.record_type", "Record type", base.DEC,
                                 { [0] = "message", [1] = "session start",
                                   [2] = "malformed input", [3] = "note" })
local f_regrec = ProtoField.bool("pciefw.binary_record",
                                 "Carried as a binary register record (11.7)")
local f_session = ProtoField.string("pciefw.session", "Session")
local f_note = ProtoField.string("pciefw.note", "Note on the message before")
local f_raw = ProtoField.bytes("pciefw.raw", "Raw bytes received")
local f_len = ProtoField.uint32("pciefw.length", "Frame length")
local f_kind = ProtoField.string("pciefw.kind", "Kind")
local fields = { f_version, f_dir, f_rtype, f_regrec, f_session, f_note, f_raw,
                 f_len, f_kind, f_value }
for _, f in pairs(COMMON) do table.insert(fields, f) end

-- The ProtoField of each field of each schema: a message's own fields
-- share the COMMON ones by name; the rest, and sub-messages' fields, are
-- PREFIX.NAME.
local function make_fields(prefix, sch, top)
  for _, spec in ipairs(sch) do
    local name, kind = spec[1], spec[2]
    if kind == "message" then
      make_fields(spec[3].prefix, spec[3], false)
    elseif top and COMMON[name] then
      spec.field = COMMON[name]
    else
      local abbrev = prefix .. "." .. name
      if kind == "uint" then
        spec.field = (U64[name] and ProtoField.uint64 or ProtoField.uint32)(
          abbrev, name, HEX[name] and base.HEX or base.DEC)
      elseif kind == "enum" then
        spec.field = ProtoField.uint32(abbrev, name, base.DEC, spec[3])
      elseif kind == "bool" then
        spec.field = ProtoField.bool(abbrev, name)
      elseif kind == "string" then
        spec.field = ProtoField.string(abbrev, name)
      else
        spec.field = ProtoField.bytes(abbrev, name)
      end
      table.insert(fields, spec.field)
    end
  end
end
for _, msg in pairs(MESSAGES) do make_fields("pciefw." .. msg[1], msg[2], true) end
-- The RTL bridge's notes (docs/hdl.md 7): the simulation cycle of the
-- transaction's first handshake, and its time in the waveform.
local f_sim_cycle = ProtoField.uint64("pciefw.sim_cycle", "Simulation cycle")
local f_sim_ns = ProtoField.uint64("pciefw.sim_time_ns", "Simulation time (ns)")
table.insert(fields, f_sim_cycle)
table.insert(fields, f_sim_ns)
p.fields = fields

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

local function hex(v)
  return "0x" .. v:tohex():gsub("^0+(.)", "%1")
end

-- A scalar's text in the summary, as pciefw-trace writes it.
local function shown(spec, v)
  local name, kind = spec[1], spec[2]
  if kind == "enum" then return spec[3][v:tonumber()] or tostring(v) end
  if kind == "bool" then return v:tonumber() ~= 0 and "true" or "false" end
  if HEX[name] then return hex(v) end
  return tostring(v)
end

-- Data's text: 1, 2, 4 or 8 bytes of register data as their value; other
-- data (and DMA writes) as bytes, long ones cut.
local function data_text(tvb, start, len, kind)
  if len == 0 then return "-", nil end
  if kind == "bytes" and (len == 1 or len == 2 or len == 4 or len == 8) then
    local v = tvb(start, len):le_uint64()
    return "0x" .. v:tohex():sub(-2 * len), v
  end
  local shown_len = len < 16 and len or 16
  local s = tostring(tvb(start, shown_len):bytes()):lower()
  if len > shown_len then s = s .. "... (" .. len .. " bytes)" end
  return s, nil
end

-- Decode the fields in [off, stop) with @sch under @tree; a table of each
-- field's summary text by field number, or nil if malformed.
local decode
decode = function(tvb, tree, off, stop, sch)
  local seen, texts = {}, {}
  while off < stop do
    local key, noff = varint(tvb, off, stop)
    if not key then return nil end
    local num = key:rshift(3):tonumber()
    local wire = key:band(UInt64(7)):tonumber()
    local spec = sch[num]
    if wire == 0 then
      local v, vend = varint(tvb, noff, stop)
      if not v then return nil end
      if spec and spec.field then
        if spec[2] == "enum" then
          tree:add(spec.field, tvb(off, vend - off), v:tonumber())
        elseif spec[2] == "bool" then
          tree:add(spec.field, tvb(off, vend - off), v:tonumber() ~= 0)
        else
          tree:add(spec.field, tvb(off, vend - off), int_value(spec[1], v))
        end
        texts[num] = shown(spec, v)
        seen[num] = true
      end
      off = vend
    elseif wire == 5 then                       -- fixed32: the hello's magic
      if noff + 4 > stop then return nil end
      local v = UInt64(tvb(noff, 4):le_uint())
      if spec and spec.field then
        tree:add(spec.field, tvb(off, noff + 4 - off), int_value(spec[1], v))
        texts[num] = shown(spec, v)
        seen[num] = true
      end
      off = noff + 4
    elseif wire == 1 then
      if noff + 8 > stop then return nil end
      off = noff + 8
    elseif wire == 2 then
      local len, dstart = varint(tvb, noff, stop)
      if not len then return nil end
      len = len:tonumber()
      if dstart + len > stop then return nil end
      if spec and spec[2] == "message" then
        local sub = tree:add(p, tvb(off, dstart + len - off), spec[1])
        local subtexts = decode(tvb, sub, dstart, dstart + len, spec[3])
        if not subtexts then return nil end
        local parts = {}
        for n = 1, #spec[3] do table.insert(parts, subtexts[n]) end
        texts[num] = (texts[num] and texts[num] .. "," or "") .. table.concat(parts, ":")
        seen[num] = true
      elseif spec and spec[2] == "string" then
        local s = len > 0 and tvb(dstart, len):string() or ""
        tree:add(spec.field, tvb(off, dstart + len - off), s)
        texts[num] = "\"" .. s .. "\""
        seen[num] = true
      elseif spec and spec.field then
        local text, v = data_text(tvb, dstart, len, spec[2])
        if len > 0 then tree:add(spec.field, tvb(dstart, len)) end
        if v then tree:add(f_value, tvb(dstart, len), v) end
        texts[num] = text
        seen[num] = true
      end
      off = dstart + len
    else
      return nil
    end
  end
  -- Fields at their default value are not on the wire (proto3): shown.
  for num, spec in ipairs(sch) do
    if not seen[num] then
      local item
      if spec[2] == "message" then
        texts[num] = "-"
      elseif spec[2] == "string" then
        item = tree:add(spec.field, "")
        texts[num] = "\"\""
      elseif spec[2] == "bytes" or spec[2] == "memory" then
        -- An empty range: a ByteArray alone is refused as a value here.
        item = tree:add(spec.field, tvb(stop, 0))
        texts[num] = "-"
      elseif spec[2] == "bool" then
        item = tree:add(spec.field, false)
        texts[num] = "false"
      elseif spec[2] == "enum" then
        item = tree:add(spec.field, 0)
        texts[num] = shown(spec, UInt64(0))
      else
        item = tree:add(spec.field, int_value(spec[1], UInt64(0)))
        texts[num] = shown(spec, UInt64(0))
      end
      if item then
        item:append_text(" (default: not on the wire)")
        item:set_generated()
      end
    end
  end
  return texts
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
  local regrec = tvb(3, 1):bitfield(7, 1) == 1
  if regrec then t:add(f_regrec, tvb(3, 1), true) end
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
  local summary = { kind }
  if msg then
    local texts = decode(tvb, t, start, start + mlen:tonumber(), msg[2])
    if not texts then
      t:add_proto_expert_info(e_malformed, "bad " .. kind .. " fields")
    else
      for n = 1, #msg[2] do
        table.insert(summary, msg[2][n][1] .. "=" .. texts[n])
      end
    end
  end
  if regrec then table.insert(summary, "[binary record]") end
  pinfo.cols.info = table.concat(summary, " ")
  return total
end

local encap = (wtap_encaps and wtap_encaps.USER0) or wtap.USER0
DissectorTable.get("wtap_encap"):add(encap, p)
