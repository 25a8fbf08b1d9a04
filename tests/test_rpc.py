"""RPC frames: pack/parse round trips, an independent struct encoder as
oracle, every parser error class, robustness against mutated frames."""
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast import rpc
from slurmauth_fast.rpc import (
    AUTH_JWT, AUTH_MUNGE, AUTH_NONE, AUTH_SLURM, NO_AUTH_CRED, PACK_ADDRS, PROTOCOL_VERSION,
    SLURMDBD_CONNECTION, Forward, OrigAddr, pack_frame, parse_frame, supported_versions,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOjB9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmE"


# --- an independent encoder written from the spec with struct ----------------

def s(v):
    if v is None:
        return struct.pack(">I", 0)
    b = v.encode() if isinstance(v, str) else v
    return struct.pack(">I", len(b) + 1) + b + b"\0"


def addr_bytes(orig):
    if orig is None:
        return struct.pack(">H", 0)
    fam = orig.family
    if fam == 2:   # s_addr / sin_port packed as little-endian host integers
        ip = ipaddress.IPv4Address(orig.host).packed
        return struct.pack(">HIH", 2, struct.unpack("<I", ip)[0], struct.unpack("<H", struct.pack(">H", orig.port))[0])
    if fam == 10:
        return struct.pack(">HI", 10, 16) + ipaddress.IPv6Address(orig.host).packed + \
            struct.pack(">H", struct.unpack("<H", struct.pack(">H", orig.port))[0])
    return struct.pack(">H", fam)


def oracle(msg_type, body, *, credential=None, plugin=AUTH_SLURM, username=None, flags=0,
           version=PROTOCOL_VERSION, forward=None, orig_addr=None, body_length=None,
           ret_cnt=0, auth=None, prefix=True):
    h = b""
    if flags & SLURMDBD_CONNECTION:
        h += struct.pack(">H", msg_type)
    h += struct.pack(">HHHI", version, flags, msg_type, len(body) if body_length is None else body_length)
    if forward:
        h += struct.pack(">H", forward.cnt) + s(forward.nodelist) + struct.pack(">IH", forward.timeout, forward.tree_width)
        if flags & PACK_ADDRS:
            h += s(forward.net_cred)
        h += struct.pack(">H", forward.tree_depth)
    else:
        h += struct.pack(">H", 0)
    h += struct.pack(">H", ret_cnt) + addr_bytes(orig_addr)
    if auth is not None:
        h += auth
    elif not flags & NO_AUTH_CRED:
        h += struct.pack(">I", plugin)
        if plugin in (AUTH_MUNGE, AUTH_SLURM):
            h += s(credential)
        elif plugin == AUTH_JWT:
            h += s(credential) + s(username)
    h += body
    return (struct.pack(">I", len(h)) + h) if prefix else h


# --- strategies ---------------------------------------------------------------

text = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=40)
forwards = st.builds(Forward, cnt=st.integers(1, 0xFFFF), nodelist=st.one_of(st.none(), text),
                     timeout=st.integers(0, 2 ** 32 - 1), tree_width=st.integers(0, 0xFFFF),
                     tree_depth=st.integers(0, 0xFFFF), net_cred=st.one_of(st.none(), text))
addrs = st.one_of(
    st.none(),
    st.builds(lambda ip, p: OrigAddr(2, str(ipaddress.IPv4Address(ip)), p), st.integers(0, 2 ** 32 - 1), st.integers(0, 0xFFFF)),
    st.builds(lambda ip, p: OrigAddr(10, str(ipaddress.IPv6Address(ip)), p), st.integers(0, 2 ** 128 - 1), st.integers(0, 0xFFFF)),
    st.builds(OrigAddr, st.sampled_from([1, 3, 0xFFFF])),
)


@st.composite
def frames(draw):
    flags = draw(st.integers(0, 0xFFFF)) & ~SLURMDBD_CONNECTION
    dbd = draw(st.booleans())
    if dbd:
        flags |= SLURMDBD_CONNECTION
    plugin = draw(st.sampled_from([AUTH_NONE, AUTH_MUNGE, AUTH_JWT, AUTH_SLURM]))
    kw = dict(
        msg_type=draw(st.integers(0, 0xFFFF)), body=draw(st.binary(max_size=200)), flags=flags,
        version=draw(st.integers(*supported_versions())), orig_addr=draw(addrs), plugin=plugin,
        credential=None if plugin == AUTH_NONE or flags & NO_AUTH_CRED else draw(st.one_of(st.none(), text)),
        username=draw(st.one_of(st.none(), text)) if plugin == AUTH_JWT and not flags & NO_AUTH_CRED else None,
    )
    fwd = draw(st.one_of(st.none(), forwards))
    if fwd is not None and not flags & PACK_ADDRS:
        fwd = Forward(fwd.cnt, fwd.nodelist, fwd.timeout, fwd.tree_width, fwd.tree_depth, None)
    kw["forward"] = fwd
    return kw, dbd, draw(st.booleans())


@given(frames())
def test_round_trip_and_oracle(case):
    kw, dbd, prefix = case
    data = pack_frame(**kw, length_prefix=prefix)
    assert data == oracle(**kw, prefix=prefix)
    f = parse_frame(data, slurmdbd=dbd, length_prefix=prefix)
    assert (f.version, f.flags, f.msg_type) == (kw["version"], kw["flags"], kw["msg_type"])
    assert bytes(f.body) == kw["body"] and f.body_length == len(kw["body"])
    assert f.forward == kw["forward"] and f.ret_cnt == 0
    assert f.orig_addr == kw["orig_addr"]
    no_auth = bool(kw["flags"] & NO_AUTH_CRED)
    assert f.auth_plugin == (None if no_auth else kw["plugin"])
    cred = kw["credential"]
    assert f.auth_cred == (None if cred is None else cred.encode())
    assert f.auth_username == kw["username"]
    assert f.total_len == len(data) - (4 if prefix else 0)
    assert f.body_offset + f.body_length == len(data)


def test_body_is_a_zero_copy_view():
    buf = bytearray(pack_frame(1008, b"BODY", credential=TOKEN))
    f = parse_frame(buf)
    buf[-4:] = b"bodY"
    assert bytes(f.body) == b"bodY"
    assert isinstance(f.body, memoryview)


def test_offsets():
    data = pack_frame(1008, b"xyz", credential=TOKEN)
    f = parse_frame(data)
    assert f.header_offset == 4
    assert data[f.auth_offset:f.auth_offset + 4] == struct.pack(">I", AUTH_SLURM)
    assert data[f.body_offset:] == b"xyz"
    f2 = parse_frame(data[4:], length_prefix=False)
    assert f2.header_offset == 0 and f2.body_offset == f.body_offset - 4


def test_real_slurm_ping_layout():
    # REQUEST_PING from a 26.05 client, auth/slurm, empty body, orig_addr unset.
    data = pack_frame(1008, b"", credential="a.b.c")
    assert data.hex() == ("0000001e" "2d00" "0000" "03f0" "00000000" "0000" "0000" "0000"
                          "00000067" "00000006" "612e622e6300")


def test_orig_addr_wire_bytes_match_slurm_on_little_endian_hosts():
    data = pack_frame(1008, b"", orig_addr=("10.0.0.1", 6817), flags=NO_AUTH_CRED)
    # family 2, then s_addr and sin_port as host integers: bytes reversed
    assert data[-8:] == bytes.fromhex("0002" "0100000a" "a11a")
    assert parse_frame(data).orig_addr == OrigAddr(2, "10.0.0.1", 6817)


def test_repr_hides_the_credential():
    f = parse_frame(pack_frame(1008, b"", credential=TOKEN))
    assert TOKEN not in repr(f) and "bytes>" in repr(f)


# --- versions -----------------------------------------------------------------

def test_default_versions_are_current_and_three_older():
    assert PROTOCOL_VERSION == 0x2D00
    assert rpc.DEFAULT_VERSIONS == (0x2A00, 0x2D00)
    for v in (0x2A00, 0x2B00, 0x2C00, 0x2D00):
        assert parse_frame(pack_frame(1008, b"", credential=TOKEN, version=v)).version == v
    for v in (0x2900, 0x2800, 0x2E00, 0, 0xFFFF):
        with pytest.raises(E.ProtocolVersionError) as ei:
            parse_frame(pack_frame(1008, b"", credential=TOKEN, version=v))
        assert ei.value.slurm_errno == E.SLURM_PROTOCOL_VERSION_ERROR


def test_current_version_is_configurable():
    newer = supported_versions(0x2E00)
    assert newer == (0x2B00, 0x2E00)
    assert parse_frame(pack_frame(1008, b"", version=0x2E00, credential=TOKEN), versions=newer).version == 0x2E00
    with pytest.raises(E.ProtocolVersionError):
        parse_frame(pack_frame(1008, b"", version=0x2A00, credential=TOKEN), versions=newer)


# --- every parser error class ---------------------------------------------------

def reprefix(h):
    return struct.pack(">I", len(h)) + h


GOOD = pack_frame(1008, b"body", credential=TOKEN)


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00"])
def test_missing_prefix(data):
    with pytest.raises(E.FramePrefixError):
        parse_frame(data)


def test_too_large_checked_first():
    with pytest.raises(E.FrameTooLargeError):
        parse_frame(b"\xff\xff\xff\xff")                      # nothing else needs to be present
    with pytest.raises(E.FrameTooLargeError):
        parse_frame(GOOD, max_frame=len(GOOD) - 5)
    parse_frame(GOOD, max_frame=len(GOOD) - 4)
    with pytest.raises(E.FrameTooLargeError):
        parse_frame(GOOD[4:], length_prefix=False, max_frame=10)


def test_total_len_vs_bytes():
    with pytest.raises(E.FrameTruncatedError):
        parse_frame(GOOD[:-1])
    with pytest.raises(E.FrameTrailingBytesError):
        parse_frame(GOOD + b"\0")


@pytest.mark.parametrize("cut", range(1, 14))
def test_header_cut_short(cut):
    with pytest.raises(E.HeaderTruncatedError):
        parse_frame(reprefix(GOOD[4:4 + cut]))


def test_forward_cut_short_and_limits():
    fwd = Forward(3, "node[1-3]", 100, 50, 2, "netcred")
    data = pack_frame(1008, b"", credential=TOKEN, forward=fwd, flags=PACK_ADDRS)
    assert parse_frame(data).forward == fwd
    # cut in the middle of the nodelist, then just before tree_depth
    for end in (4 + 12 + 6, 4 + 12 + 4 + 10 + 4 + 2 + 4 + 8):
        with pytest.raises(E.HeaderTruncatedError):
            parse_frame(reprefix(data[4:end]))
    # a nodelist longer than 1 GiB is refused by the limit, not by the bytes
    h = bytearray(data[4:])
    h[12:16] = struct.pack(">I", 0x7FFFFFFF)
    with pytest.raises(E.PackLimitError):
        parse_frame(reprefix(bytes(h)))


def test_pack_addrs_changes_the_forward_layout():
    fwd = Forward(3, "node[1-3]", 100, 50, 2)
    without = pack_frame(1008, b"", credential=TOKEN, forward=fwd)
    assert parse_frame(without).forward == fwd
    with_null = pack_frame(1008, b"", credential=TOKEN, forward=fwd, flags=PACK_ADDRS)
    assert len(with_null) == len(without) + 4          # a NULL net_cred
    with pytest.raises(E.BadArgumentError):
        pack_frame(1008, b"", forward=Forward(1, "n1", 1, 1, 1, "nc"))


def test_packstr_rules_inside_frames():
    h = bytearray(GOOD[4:])
    nul = len(h) - 4 - 1                               # the token's NUL
    h[nul] = ord("x")
    with pytest.raises(E.StringNulError):
        parse_frame(reprefix(bytes(h)))
    h = bytearray(GOOD[4:])
    h[nul - 5] = 0
    with pytest.raises(E.EmbeddedNulError):
        parse_frame(reprefix(bytes(h)))


def test_slurmdbd_framing():
    dbd = pack_frame(1401, b"x", credential=TOKEN, flags=SLURMDBD_CONNECTION)
    assert dbd[4:6] == struct.pack(">H", 1401)
    assert parse_frame(dbd, slurmdbd=True).msg_type == 1401
    # prefix differs from the header's msg_type
    h = bytearray(dbd[4:])
    h[0:2] = struct.pack(">H", 1402)
    with pytest.raises(E.SlurmdbdFramingError):
        parse_frame(reprefix(bytes(h)), slurmdbd=True)
    # flag missing although the framing has the prefix
    h = bytearray(dbd[4:])
    h[4:6] = b"\0\0"
    with pytest.raises(E.SlurmdbdFramingError):
        parse_frame(reprefix(bytes(h)), slurmdbd=True)
    # flag set on a frame read without the prefix
    h = bytearray(GOOD[4:])
    h[2:4] = struct.pack(">H", SLURMDBD_CONNECTION)
    with pytest.raises(E.SlurmdbdFramingError):
        parse_frame(reprefix(bytes(h)))


def test_ret_list_is_refused_clearly():
    data = oracle(1008, b"", credential=TOKEN, ret_cnt=2)
    with pytest.raises(E.UnsupportedRetListError, match="ret_cnt"):
        parse_frame(data)


def test_orig_addr_families():
    for host, port in (("192.168.1.20", 6817), ("fe80::1", 1), ("::", 0)):
        assert parse_frame(pack_frame(1008, b"", credential=TOKEN, orig_addr=(host, port))).orig_addr == \
            OrigAddr(10 if ":" in host else 2, host, port)
    unix = oracle(1008, b"", credential=TOKEN, orig_addr=OrigAddr(1))
    assert parse_frame(unix).orig_addr == OrigAddr(1)
    bad6 = oracle(1008, b"", credential=TOKEN, orig_addr=OrigAddr(1))
    h = bytearray(bad6[4:])
    at = h.index(b"\x00\x01\x00\x00\x00\x67")
    h[at:at + 2] = b"\x00\x0a" + struct.pack(">I", 4) + bytes(4) + b"\x00\x00"
    with pytest.raises(E.AddressError):
        parse_frame(reprefix(bytes(h)))
    v6 = pack_frame(1008, b"", flags=NO_AUTH_CRED, orig_addr=("fe80::1", 1))
    for cut in (2, 8, 2 + 4 + 16 + 1):     # in the length, the address, the port
        with pytest.raises(E.HeaderTruncatedError):
            parse_frame(reprefix(v6[4:4 + 14 + cut]))


def test_auth_section_errors():
    with pytest.raises(E.UnknownAuthPluginError):
        parse_frame(oracle(1008, b"", auth=struct.pack(">I", 104)))
    for auth in (b"\x00\x00", struct.pack(">I", AUTH_SLURM) + b"\x00\x00",
                 struct.pack(">I", AUTH_JWT) + s("tok")):      # jwt without its username
        with pytest.raises(E.AuthSectionError):
            parse_frame(oracle(1008, b"", auth=auth))
    f = parse_frame(pack_frame(1008, b"", plugin=AUTH_NONE))
    assert f.auth_plugin == AUTH_NONE and f.auth_cred is None
    f = parse_frame(pack_frame(1008, b"", flags=NO_AUTH_CRED))
    assert f.auth_plugin is None
    f = parse_frame(pack_frame(1008, b"", plugin=AUTH_MUNGE, credential="MUNGE:abc:"))
    assert f.auth_cred == b"MUNGE:abc:"


def test_body_length_errors():
    with pytest.raises(E.BodyTruncatedError):
        parse_frame(oracle(1008, b"body", credential=TOKEN, body_length=5))
    with pytest.raises(E.BodyTrailingBytesError):
        parse_frame(oracle(1008, b"body", credential=TOKEN, body_length=3))
    with pytest.raises(E.BodyTruncatedError):
        parse_frame(oracle(1008, b"", credential=TOKEN, body_length=0xFFFFFFFF))


@pytest.mark.parametrize("bad", ["a string", None, 42])
def test_parse_frame_wants_bytes(bad):
    with pytest.raises(E.BadArgumentError):
        parse_frame(bad)


def test_frame_errors_carry_slurm_errno_and_offset():
    with pytest.raises(E.FrameError) as ei:
        parse_frame(GOOD + b"junk")
    assert ei.value.slurm_errno == E.ESLURM_PROTOCOL_INCOMPLETE_PACKET
    assert f"offset {len(GOOD)}" in str(ei.value)


@pytest.mark.parametrize("kw", [
    dict(plugin=99), dict(plugin=AUTH_NONE, credential="x"), dict(flags=NO_AUTH_CRED, credential="x"),
    dict(username="bob"), dict(flags=0x10000), dict(version=-1), dict(orig_addr=("not-an-ip", 1)),
    dict(orig_addr=OrigAddr(2, "::1", 1)), dict(credential="a\0b"), dict(orig_addr=(1, 2)),
    dict(forward=Forward(0, "n", 1, 1, 1)), dict(forward=Forward(1, "n", -1, 1, 1)),
    dict(forward=Forward(1, "n", 1, 1 << 16, 1)), dict(forward=Forward(1, 5, 1, 1, 1)),
    dict(orig_addr=("10.0.0.1", "80")), dict(orig_addr=("10.0.0.1", 70000)), dict(orig_addr="10.0.0.1"),
])
def test_pack_frame_argument_errors(kw):
    with pytest.raises((E.BadArgumentError, E.PackError)):
        pack_frame(1008, b"", **kw)


def test_pack_frame_body_must_be_bytes():
    with pytest.raises(E.BadArgumentError):
        pack_frame(1008, "text body")


# --- robustness -----------------------------------------------------------------

@given(frames(), st.data())
def test_mutated_frames_never_crash(case, data):
    kw, dbd, prefix = case
    frame = bytearray(pack_frame(**kw, length_prefix=prefix))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, max(len(frame) - 1, 0)))
        if op == "flip" and frame:
            frame[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del frame[i:]
        else:
            frame[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        f = parse_frame(bytes(frame), slurmdbd=dbd, length_prefix=prefix)
    except E.SlurmAuthError:
        return
    assert f.body_offset + f.body_length <= len(frame)


@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_garbage_never_crashes(data, prefix, dbd):
    try:
        parse_frame(data, length_prefix=prefix, slurmdbd=dbd)
    except E.SlurmAuthError:
        pass
