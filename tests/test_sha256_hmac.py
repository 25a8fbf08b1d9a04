"""SHA-256 (portable and SHA-NI) and HMAC-SHA256 against RFC 4231 and independent oracles."""
import hashlib
import hmac as std_hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as c_hmac
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import load_vectors
from slurmauth_fast import HS256Key
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.errors import BadArgumentError

IMPLS = [lib.SA_SHA256_PORTABLE, lib.SA_SHA256_SHANI, lib.SA_SHA256_ARMV8]


@pytest.fixture(params=IMPLS, ids=["portable", "sha-ni", "armv8"])
def impl(request):
    if request.param == lib.SA_SHA256_SHANI and not lib.sa_sha256_shani_available():
        pytest.skip("this CPU has no SHA-NI")
    if request.param == lib.SA_SHA256_ARMV8 and not lib.sa_sha256_armv8_available():
        pytest.skip("not an aarch64 CPU with the SHA-2 instructions")
    assert lib.sa_sha256_select(request.param) == request.param
    assert lib.sa_sha256_active() == request.param
    yield request.param
    lib.sa_sha256_select(lib.SA_SHA256_AUTO)


def sha256(data: bytes) -> bytes:
    out = ffi.new("uint8_t[32]")
    lib.sa_sha256(data, len(data), out)
    return bytes(out)


def cryptography_hmac(key: bytes, msg: bytes) -> bytes:
    h = c_hmac.HMAC(key, hashes.SHA256())
    h.update(msg)
    return h.finalize()


def test_auto_selects_shani_when_available():
    lib.sa_sha256_select(lib.SA_SHA256_AUTO)
    want = (lib.SA_SHA256_SHANI if lib.sa_sha256_shani_available() else
            lib.SA_SHA256_ARMV8 if lib.sa_sha256_armv8_available() else lib.SA_SHA256_PORTABLE)
    assert lib.sa_sha256_active() == want


def test_unknown_impl_refused():
    before = lib.sa_sha256_active()
    assert lib.sa_sha256_select(99) == -1
    assert lib.sa_sha256_active() == before


@pytest.mark.parametrize("n", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 4096 + 3])
def test_sha256_boundaries(impl, n):
    data = bytes((i * 7 + 3) & 0xFF for i in range(n))
    assert sha256(data) == hashlib.sha256(data).digest()


def test_sha256_streaming_split_points(impl):
    data = bytes(range(256)) * 3
    for cut in (0, 1, 63, 64, 65, 200, len(data)):
        ctx = ffi.new("sa_sha256_ctx *")
        lib.sa_sha256_init(ctx)
        lib.sa_sha256_update(ctx, data[:cut], cut)
        lib.sa_sha256_update(ctx, data[cut:], len(data) - cut)
        out = ffi.new("uint8_t[32]")
        lib.sa_sha256_final(ctx, out)
        assert bytes(out) == hashlib.sha256(data).digest()


@pytest.mark.parametrize("case", load_vectors("rfc4231_hmac_sha256.json")["cases"], ids=lambda c: f"rfc4231-{c['case']}")
def test_rfc4231(impl, case):
    key = HS256Key(bytes.fromhex(case["key"]))
    mac = key.mac(bytes.fromhex(case["data"]))
    if case["truncate"]:
        mac = mac[: case["truncate"]]
    assert mac.hex() == case["mac"]


@given(key=st.binary(min_size=1, max_size=200), msg=st.binary(max_size=600))
def test_hmac_matches_cryptography_portable(key, msg):
    assert lib.sa_sha256_select(lib.SA_SHA256_PORTABLE) == lib.SA_SHA256_PORTABLE
    try:
        assert HS256Key(key).mac(msg) == cryptography_hmac(key, msg)
    finally:
        lib.sa_sha256_select(lib.SA_SHA256_AUTO)


@pytest.mark.skipif(not lib.sa_sha256_shani_available(), reason="this CPU has no SHA-NI")
@given(key=st.binary(min_size=1, max_size=200), msg=st.binary(max_size=600))
def test_hmac_matches_cryptography_shani(key, msg):
    assert lib.sa_sha256_select(lib.SA_SHA256_SHANI) == lib.SA_SHA256_SHANI
    try:
        assert HS256Key(key).mac(msg) == cryptography_hmac(key, msg)
        assert HS256Key(key).mac(msg) == std_hmac.new(key, msg, hashlib.sha256).digest()
    finally:
        lib.sa_sha256_select(lib.SA_SHA256_AUTO)


def test_empty_key_refused():
    with pytest.raises(BadArgumentError, match="empty"):
        HS256Key(b"")


def test_key_type_checked():
    with pytest.raises(BadArgumentError):
        HS256Key("not bytes")  # type: ignore[arg-type]


def test_ct_equal():
    a = bytes(range(32))
    assert lib.sa_ct_equal(a, a, 32) == 1
    for i in range(32):
        b = bytearray(a)
        b[i] ^= 0x80
        assert lib.sa_ct_equal(a, bytes(b), 32) == 0
    assert lib.sa_ct_equal(b"", b"", 0) == 1


def test_key_states_wiped_on_close_and_repr_hides_secret():
    secret = b"supersecret-key-material-123456"
    key = HS256Key(secret)
    ctx = key.cdata
    assert any(bytes(ffi.buffer(ctx)))
    assert secret.decode() not in repr(key) and "secret not shown" in repr(key)
    key.close()
    assert not any(bytes(ffi.buffer(ctx)))
    with pytest.raises(BadArgumentError, match="closed"):
        key.mac(b"x")


def _mac_x2(ka, ma, kb, mb):
    oa, ob = ffi.new("uint8_t[32]"), ffi.new("uint8_t[32]")
    lib.sa_hmac_sha256_x2(ka._ctx, ma, len(ma), oa, kb._ctx, mb, len(mb), ob)
    return bytes(oa), bytes(ob)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # impl holds for all inputs
@given(ka=st.binary(min_size=1, max_size=100), kb=st.binary(min_size=1, max_size=100),
       ma=st.binary(max_size=400), mb=st.binary(max_size=400), same_len=st.booleans())
def test_hmac_x2_matches_two_single_hmacs(impl, ka, kb, ma, mb, same_len):
    # Same-length messages take the interleaved path all the way; different
    # lengths split into a common interleaved run and single tails.
    if same_len:
        mb = (mb * (len(ma) // max(len(mb), 1) + 1))[:len(ma)] if mb else bytes(len(ma))
    got = _mac_x2(HS256Key(ka), ma, HS256Key(kb), mb)
    assert got == (cryptography_hmac(ka, ma), cryptography_hmac(kb, mb))


@pytest.mark.parametrize("la,lb", [(0, 0), (55, 55), (56, 56), (63, 64), (64, 64), (119, 120),
                                   (300, 300), (300, 2), (1, 300), (128, 191)])
def test_hmac_x2_padding_boundaries(impl, la, lb):
    ka, kb = HS256Key(b"k" * 70), HS256Key(b"other")
    ma, mb = bytes(range(256)) * 2, bytes(range(255, -1, -1)) * 2
    assert _mac_x2(ka, ma[:la], kb, mb[:lb]) == (cryptography_hmac(b"k" * 70, ma[:la]),
                                                 cryptography_hmac(b"other", mb[:lb]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # impl holds for all inputs
@given(key=st.binary(min_size=1, max_size=100), msg=st.binary(max_size=400),
       steps=st.integers(min_value=0, max_value=40))
def test_hmac_job_any_number_of_steps_then_end(impl, key, msg, steps):
    """sa_hmac_job (the HMAC the auth/slurm verifier interleaves with its
    scan): however many pieces are stepped before sa_hmac_end (none, some,
    more than there are), the tag is the HMAC, and end wipes the job."""
    k = HS256Key(key)
    job = ffi.new("sa_hmac_job *")
    out = ffi.new("uint8_t[32]")
    lib.sa_hmac_begin(job, k._ctx, msg, len(msg))
    for _ in range(steps):
        lib.sa_hmac_step(job)
    lib.sa_hmac_end(job, out)
    assert bytes(out) == cryptography_hmac(key, msg)
    assert bytes(ffi.buffer(job)) == bytes(ffi.sizeof("sa_hmac_job"))
