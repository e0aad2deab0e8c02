"""docs/protocol.md and protocol/pciefw.proto describe the same message set,
one to one: every message kind of the .proto has its row in the spec, and
the spec's message tables name no kind the .proto lacks."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def proto_kinds():
    text = open(os.path.join(REPO, "protocol", "pciefw.proto")).read()
    body = re.search(r"oneof body \{(.*?)\}", text, re.S).group(1)
    return {m.group(1) for m in re.finditer(r"^\s*(\w+) \w+ = \d+;", body, re.M)}


def doc_table_kinds():
    text = open(os.path.join(REPO, "docs", "protocol.md")).read()
    # Rows of the message tables: "| `Name` | ..." with a CamelCase name.
    return {m.group(1) for m in re.finditer(r"^\| `([A-Z][a-z]\w*)` \|", text, re.M)}


def test_every_message_kind_is_specified():
    kinds = proto_kinds()
    assert len(kinds) == 22
    doc = open(os.path.join(REPO, "docs", "protocol.md")).read()
    for kind in kinds:
        assert f"`{kind}`" in doc, kind


def test_spec_tables_name_only_real_messages():
    kinds = proto_kinds()
    # Hello and DeviceDescription have field tables of their own (2.1, 4.2).
    assert doc_table_kinds() - {"Hello"} <= kinds, doc_table_kinds() - kinds
    assert kinds - {"Hello", "DeviceDescription"} <= doc_table_kinds() | {"Completion"}


def test_enum_values_are_specified():
    text = open(os.path.join(REPO, "protocol", "pciefw.proto")).read()
    doc = open(os.path.join(REPO, "docs", "protocol.md")).read()
    for value in re.findall(r"^\s*(STATUS_\w+|BAR_\w+|RESET_\w+|ERROR_\w+) = \d+;",
                            text, re.M):
        assert value in doc, value


def test_error_table_uses_every_code():
    """Section 7.1 maps violations to codes: every code a peer can be sent
    for its own fault appears there, and the table names no other code."""
    text = open(os.path.join(REPO, "protocol", "pciefw.proto")).read()
    codes = set(re.findall(r"^\s*(ERROR_\w+) = \d+;", text, re.M))
    doc = open(os.path.join(REPO, "docs", "protocol.md")).read()
    table = doc[doc.index("### 7.1"):doc.index("### 7.2")]
    used = set(re.findall(r"\| `(ERROR_\w+)` \|$", table, re.M))
    assert used <= codes, used - codes
    assert codes - used == {"ERROR_INTERNAL"}, codes - used
