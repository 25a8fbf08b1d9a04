"""The wire units' C API directly: status codes in the wire range (60-99),
one code per failure, and the failures Python never triggers on its own
(writer capacity, invalid options, NULL arguments)."""
import re
from pathlib import Path

from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.rpc import pack_frame

CSRC = Path(__file__).resolve().parent.parent / "csrc"
WIRE_HEADERS = ["pack.h", "rpc.h", "bodyhash.h", "keccak.h", "k12.h", "sha3.h", "fuzz.h"]


def codes(header):
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"#define\s+(SA_E_\w+)\s+(\d+)", (CSRC / header).read_text())}


def test_wire_status_codes_are_in_range_and_unique():
    wire = {}
    for h in WIRE_HEADERS:
        wire.update(codes(h))
    assert wire and all(60 <= v <= 99 for v in wire.values())
    every = {}
    for h in CSRC.glob("*.h"):
        for name, v in codes(h.name).items():
            assert v not in every.values() or every.get(name) == v, f"{name}={v} reused"
            every[name] = v


def test_writer_capacity():
    buf = ffi.new("uint8_t[3]")
    w = ffi.new("sa_writer *")
    lib.sa_writer_init(w, buf, 3)
    assert lib.sa_pack32(w, 1) == lib.SA_E_PACK_FULL
    assert lib.sa_pack16(w, 1) == 0 and lib.sa_pack16(w, 1) == lib.SA_E_PACK_FULL
    assert lib.sa_packmem(w, b"x", 1) == lib.SA_E_PACK_FULL
    assert lib.sa_packstr(w, b"", 0) == lib.SA_E_PACK_FULL
    assert w.off == 2                     # failures write nothing
    # measuring mode counts without writing
    lib.sa_writer_init(w, ffi.NULL, 0)
    assert lib.sa_packstr(w, b"abc", 3) == 0 and w.off == 8


def test_rpc_pack_capacity_and_measure():
    frame = pack_frame(1008, b"body", credential="a.b.c")
    m = ffi.new("sa_rpc_msg *")
    m.version, m.msg_type, m.auth_plugin, m.length_prefix = 0x2D00, 1008, 103, 1
    cred, body = ffi.from_buffer(b"a.b.c"), ffi.from_buffer(b"body")
    m.cred, m.cred_len, m.body, m.body_len = cred, 5, body, 4
    n = ffi.new("size_t *")
    assert lib.sa_rpc_pack(m, ffi.NULL, 0, n) == 0 and n[0] == len(frame)
    out = ffi.new("uint8_t[]", len(frame))
    assert lib.sa_rpc_pack(m, out, len(frame) - 1, n) == lib.SA_E_PACK_FULL
    assert lib.sa_rpc_pack(m, out, len(frame), n) == 0 and ffi.buffer(out)[:] == frame
    m.auth_plugin = 104
    assert lib.sa_rpc_pack(m, ffi.NULL, 0, n) == lib.SA_E_RPC_AUTH_PLUGIN


def test_rpc_parse_options_and_arguments():
    data = pack_frame(1008, b"", credential="a.b.c")
    o = ffi.new("sa_rpc_opts *", {"min_version": 0x2D00, "max_version": 0x2A00,
                                  "max_frame": 1 << 20, "length_prefix": 1})
    f = ffi.new("sa_rpc_frame *")
    assert lib.sa_rpc_parse(data, len(data), o, f) == lib.SA_E_RPC_OPTIONS
    o.min_version, o.max_version = 0x2A00, 0x2D00
    assert lib.sa_rpc_parse(data, len(data), o, f) == 0
    assert lib.sa_rpc_parse(ffi.NULL, 5, o, f) == lib.SA_E_ARG
    assert lib.sa_rpc_parse(data, len(data), ffi.NULL, f) == lib.SA_E_ARG


def test_body_hash_arguments():
    out = ffi.new("uint8_t[33]")
    n = ffi.new("size_t *")
    assert lib.sa_body_hash_payload(lib.SA_HASH_K12, b"x", 1, 1008, out, 32, n) == lib.SA_E_BUFFER
    assert lib.sa_body_hash_payload(lib.SA_HASH_NONE, b"x", 1, 1008, out, 2, n) == lib.SA_E_BUFFER
    assert lib.sa_body_hash_payload(lib.SA_HASH_K12, ffi.NULL, 1, 1008, out, 33, n) == lib.SA_E_ARG
    assert lib.sa_body_hash_check(b"\x01\x03\xf0", 3, ffi.NULL, 1, 1008, 0) == lib.SA_E_ARG
