"""Slurm's pack primitives: exact bytes, round trips, every unpack failure."""
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast.pack import MAX_PACK_MEM, Packer, Unpacker


def test_spec_examples():
    assert Packer().packstr("abc").getvalue() == bytes.fromhex("0000000461626300")
    assert Packer().packstr(None).getvalue() == bytes(4)
    assert Packer().packstr("").getvalue() == bytes.fromhex("0000000100")
    assert Packer().packmem(None).getvalue() == bytes(4)
    assert Packer().packmem(b"").getvalue() == bytes(4)
    assert Packer().pack16(0x2D00).pack32(0x01020304).pack64(0x1122334455667788).getvalue() == \
        bytes.fromhex("2d00" "01020304" "1122334455667788")
    assert MAX_PACK_MEM == 1024 ** 3


Field = st.one_of(
    st.tuples(st.just("16"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("32"), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("64"), st.integers(0, 2 ** 64 - 1)),
    st.tuples(st.just("mem"), st.one_of(st.none(), st.binary(min_size=1, max_size=300))),
    st.tuples(st.just("str"), st.one_of(st.none(), st.binary(max_size=300).map(lambda b: b.replace(b"\0", b"")))),
)


def struct_pack(fields):
    """An independent encoder written from the spec, with struct."""
    out = b""
    for kind, v in fields:
        if kind in ("16", "32", "64"):
            out += struct.pack({"16": ">H", "32": ">I", "64": ">Q"}[kind], v)
        elif kind == "mem":
            out += struct.pack(">I", len(v or b"")) + (v or b"")
        else:
            out += struct.pack(">I", 0) if v is None else struct.pack(">I", len(v) + 1) + v + b"\0"
    return out


@given(st.lists(Field, max_size=30))
def test_round_trip_and_oracle(fields):
    p = Packer(capacity=16)          # small, so growth is exercised
    for kind, v in fields:
        getattr(p, "pack" + kind)(v)
    data = p.getvalue()
    assert data == struct_pack(fields)
    u = Unpacker(data)
    for kind, v in fields:
        got = getattr(u, "unpack" + kind)()
        if kind == "mem":
            got = None if got is None else bytes(got)
        assert got == v
    assert u.remaining == 0


def test_unpackmem_is_zero_copy():
    buf = bytearray(Packer().packmem(b"hello").getvalue())
    view = Unpacker(buf).unpackmem()
    buf[4] = ord("j")
    assert bytes(view) == b"jello"


@pytest.mark.parametrize("meth,data", [
    ("unpack16", b"\x01"), ("unpack32", b"\x01\x02\x03"), ("unpack64", bytes(7)),
    ("unpackmem", b"\x00\x00\x00"), ("unpackmem", b"\x00\x00\x00\x05abcd"),
    ("unpackstr", b"\x00\x00\x00\x04abc"),
])
def test_truncated(meth, data):
    u = Unpacker(data)
    with pytest.raises(E.TruncatedError):
        getattr(u, meth)()
    assert u.offset == 0     # position unchanged on failure


def test_limit_checked_before_bytes():
    for n in (MAX_PACK_MEM + 1, 0xFFFFFFFF):
        for meth in ("unpackmem", "unpackstr"):
            with pytest.raises(E.PackLimitError):
                getattr(Unpacker(struct.pack(">I", n) + b"x"), meth)()
    # exactly 1 GiB is allowed by the limit (and then simply not present)
    with pytest.raises(E.TruncatedError):
        Unpacker(struct.pack(">I", MAX_PACK_MEM)).unpackmem()


def test_packstr_nul_rules():
    with pytest.raises(E.StringNulError):
        Unpacker(b"\x00\x00\x00\x03abc").unpackstr()
    with pytest.raises(E.EmbeddedNulError):
        Unpacker(b"\x00\x00\x00\x04a\0c\0").unpackstr()
    assert Unpacker(b"\x00\x00\x00\x01\0").unpackstr() == b""
    assert Unpacker(b"\x00\x00\x00\x00").unpackstr() is None
    with pytest.raises(E.EmbeddedNulError):
        Packer().packstr(b"a\0b")
    assert issubclass(E.PackError, E.UnpackError)


@pytest.mark.parametrize("meth,v", [("pack16", 0x10000), ("pack16", -1), ("pack32", 2 ** 32),
                                    ("pack64", 2 ** 64), ("pack32", "1")])
def test_pack_range_checked(meth, v):
    with pytest.raises(E.BadArgumentError):
        getattr(Packer(), meth)(v)
