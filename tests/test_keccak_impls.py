"""Both Keccak-p[1600] implementations (csrc/keccak.c): the portable C and
the AVX-512VL one, each forced with sa_keccak_select. Every implementation
must give the RFC 9861 KangarooTwelve vectors, agree with pycryptodome's K12
and hashlib's SHA3-256 on random inputs, and compute the same permutation as
a pure-Python Keccak-p[1600, n_r] written from FIPS 202 section 3 (its rho
offsets and round constants derived by the spec's algorithms, not copied from
the C tables) for random states and every round count 1..24. The AVX-512
cases skip on a CPU (or OS) without AVX-512F/VL."""
import contextlib
import hashlib

import pytest
from Crypto.Hash import KangarooTwelve as PyK12
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_vectors
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.bodyhash import k12, sha3_256

HAVE_AVX512 = lib.sa_keccak_select(lib.SA_KECCAK_AVX512) == lib.SA_KECCAK_AVX512
lib.sa_keccak_select(lib.SA_KECCAK_AUTO)
NO_AVX512 = "this CPU lacks AVX-512F/AVX-512VL (or the OS does not save the ZMM/opmask state)"
IMPLS = [
    pytest.param(lib.SA_KECCAK_PORTABLE, id="portable"),
    pytest.param(lib.SA_KECCAK_AVX512, id="avx512",
                 marks=pytest.mark.skipif(not HAVE_AVX512, reason=NO_AVX512)),
]
AVAILABLE = [lib.SA_KECCAK_PORTABLE] + ([lib.SA_KECCAK_AVX512] if HAVE_AVX512 else [])

U64 = (1 << 64) - 1


@contextlib.contextmanager
def using(impl):
    assert lib.sa_keccak_select(impl) == impl
    try:
        assert lib.sa_keccak_active() == impl
        yield
    finally:
        lib.sa_keccak_select(lib.SA_KECCAK_AUTO)


# ---- FIPS 202 reference, in Python --------------------------------------

def _rol(v, n):
    n %= 64
    return ((v << n) | (v >> (64 - n))) & U64 if n else v


def _rc_bit(t):
    """FIPS 202 algorithm 5: rc(t), an LFSR over GF(2)."""
    if t % 255 == 0:
        return 1
    r = [1, 0, 0, 0, 0, 0, 0, 0]
    for _ in range(t % 255):
        r = [0] + r
        r[0] ^= r[8]
        r[4] ^= r[8]
        r[5] ^= r[8]
        r[6] ^= r[8]
        r = r[:8]
    return r[0]


ROUND_CONSTANTS = [sum(_rc_bit(j + 7 * ir) << ((1 << j) - 1) for j in range(7)) for ir in range(24)]


def _rho_offsets():
    """FIPS 202 algorithm 2: the offset of lane (x, y), walking (x, y) -> (y, 2x+3y)."""
    off = [0] * 25
    x, y = 1, 0
    for t in range(24):
        off[x + 5 * y] = (t + 1) * (t + 2) // 2 % 64
        x, y = y, (2 * x + 3 * y) % 5
    return off


RHO = _rho_offsets()


def keccak_p_ref(lanes, rounds):
    """Keccak-p[1600, rounds] on 25 lanes, lane (x, y) at index x + 5y."""
    a = list(lanes)
    for ir in range(24 - rounds, 24):
        c = [a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [a[i] ^ d[i % 5] for i in range(25)]                                  # theta
        a = [_rol(a[i], RHO[i]) for i in range(25)]                               # rho
        a = [a[(x + 3 * y) % 5 + 5 * x] for y in range(5) for x in range(5)]      # pi
        a = [a[x + 5 * y] ^ (~a[(x + 1) % 5 + 5 * y] & a[(x + 2) % 5 + 5 * y] & U64)
             for y in range(5) for x in range(5)]                                  # chi
        a[0] ^= ROUND_CONSTANTS[ir]                                               # iota
    return a


def permute(lanes, rounds):
    st_ = ffi.new("uint64_t[25]", list(lanes))
    lib.sa_keccak_p1600(st_, rounds)
    return list(st_)


# ---- selection -----------------------------------------------------------

def test_select_reports_what_it_can():
    try:
        assert lib.sa_keccak_select(lib.SA_KECCAK_PORTABLE) == lib.SA_KECCAK_PORTABLE
        assert lib.sa_keccak_select(99) == -1
        assert lib.sa_keccak_active() == lib.SA_KECCAK_PORTABLE   # unchanged by a refusal
        want = lib.SA_KECCAK_AVX512 if HAVE_AVX512 else lib.SA_KECCAK_PORTABLE
        assert lib.sa_keccak_select(lib.SA_KECCAK_AUTO) == want
        assert lib.sa_keccak_active() == want
    finally:
        lib.sa_keccak_select(lib.SA_KECCAK_AUTO)


def test_reference_is_keccak_f1600():
    # The reference's round constants and offsets are FIPS 202's (spot values
    # from the spec's tables), and it hashes like hashlib: SHA3-256("") is one
    # 24-round permutation of the padded block.
    assert ROUND_CONSTANTS[0] == 1 and ROUND_CONSTANTS[1] == 0x8082
    assert ROUND_CONSTANTS[23] == 0x8000000080008008
    assert RHO[1] == 1 and RHO[2] == 62 and RHO[24] == 14
    lanes = [0] * 25
    lanes[0] = 0x06
    lanes[16] = 0x80 << 56                       # rate 136 bytes: last byte is lane 16's top
    out = keccak_p_ref(lanes, 24)
    assert b"".join(v.to_bytes(8, "little") for v in out[:4]) == hashlib.sha3_256(b"").digest()


# ---- the permutation ------------------------------------------------------

lanes_st = st.lists(st.integers(0, U64), min_size=25, max_size=25)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("rounds", range(1, 25))
def test_permutation_matches_reference_every_round_count(impl, rounds):
    state = [(0x9E3779B97F4A7C15 * (i + 1) ^ (rounds << 56)) & U64 for i in range(25)]
    with using(impl):
        assert permute(state, rounds) == keccak_p_ref(state, rounds)
        assert permute([0] * 25, rounds) == keccak_p_ref([0] * 25, rounds)
        assert permute([U64] * 25, rounds) == keccak_p_ref([U64] * 25, rounds)


@pytest.mark.parametrize("impl", IMPLS)
@given(lanes_st, st.integers(1, 24))
def test_permutation_random_states(impl, lanes, rounds):
    with using(impl):
        assert permute(lanes, rounds) == keccak_p_ref(lanes, rounds)


@given(lanes_st, st.integers(0, 30))
def test_implementations_agree(lanes, rounds):
    # Including 0 rounds (identity) and counts above 24 (clamped to 24).
    outs = []
    for impl in AVAILABLE:
        with using(impl):
            outs.append(permute(lanes, rounds))
    assert all(o == outs[0] for o in outs)
    assert outs[0] == keccak_p_ref(lanes, min(rounds, 24))


# ---- the hashes over it, per implementation ------------------------------

def _input(spec):
    n = spec["len"]
    return {"empty": b"", "ptn": bytes(i % 251 for i in range(n)), "ff": b"\xff" * n}[spec["kind"]]


@pytest.mark.parametrize("impl", IMPLS)
def test_k12_rfc9861_vectors(impl):
    with using(impl):
        for v in load_vectors("k12_rfc9861.json")["vectors"]:
            out = k12(_input(v["message"]), _input(v["custom"]), v["output_len"])
            if "last" in v:
                out = out[-v["last"]:]
            assert out.hex() == v["expected"], v


@pytest.mark.parametrize("impl", IMPLS)
@given(st.binary(max_size=20000), st.binary(max_size=300), st.integers(0, 400))
def test_k12_random_inputs(impl, m, custom, length):
    with using(impl):
        assert k12(m, custom, length) == PyK12.new(data=m, custom=custom).read(length)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [0, 1, 135, 136, 137, 271, 272, 10000])
def test_sha3_256_edges(impl, n):
    m = bytes((5 * i + 1) % 256 for i in range(n))
    with using(impl):
        assert sha3_256(m) == hashlib.sha3_256(m).digest()


@pytest.mark.parametrize("impl", IMPLS)
@given(st.binary(max_size=5000), st.binary(max_size=300))
def test_sha3_256_random_inputs(impl, a, b):
    with using(impl):
        assert sha3_256(a, b) == hashlib.sha3_256(a + b).digest()
