"""auth/jwt token verification in one C call per token (``csrc/jwtverify.h``).

:func:`verify` returns the token's ``aj_result`` as a list of ints (indexed
by the constants below) and the scratch buffer its offsets point into;
:func:`verify_many` does the same for many tokens in one call.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from ._ffi import ffi, lib
from .status import raise_for_status

#: aj_result's fields, in order (every one an int64_t).
FIELDS = ("status", "err_claim", "alg", "exp", "iat", "user_claim", "user_off", "user_len",
          "alg_off", "alg_len", "kid_off", "kid_len", "uid", "gid", "id_off", "id_len",
          "signing_len", "sig_off", "sig_len", "sig_status", "claims_status")
(STATUS, ERR_CLAIM, ALG, EXP, IAT, USER_CLAIM, USER_OFF, USER_LEN, ALG_OFF, ALG_LEN, KID_OFF,
 KID_LEN, UID, GID, ID_OFF, ID_LEN, SIGNING_LEN, SIG_OFF, SIG_LEN, SIG_STATUS,
 CLAIMS_STATUS) = range(len(FIELDS))
NFIELDS = len(FIELDS)
assert ffi.sizeof("aj_result") == 8 * NFIELDS
assert all(ffi.offsetof("aj_result", f) == 8 * i for i, f in enumerate(FIELDS))

ALG_HS256 = lib.AJ_ALG_HS256
ALG_RS256 = lib.AJ_ALG_RS256
NOW_CLOCK = lib.AJ_NOW_CLOCK
INT64_MAX = 2 ** 63 - 1

#: AJ_CL_* index -> claim name (err_claim, user_claim; the last is userclaimfield's).
CLAIM_NAMES = ("exp", "iat", "uid", "gid", "id", "sun", "username", None)
assert lib.AJ_CL_USERCLAIM == len(CLAIM_NAMES) - 1 and lib.AJ_CL_SUN == CLAIM_NAMES.index("sun")

# Scratch is written before it is read: no need to zero it.
_alloc = ffi.new_allocator(should_clear_after_alloc=False)
_SMALL = 1024
_SMALL_WORDS = (lib.aj_scratch_need(_SMALL) + 7) // 8


class Policy:
    """An ``aj_policy`` and the objects it points at (kept alive with it)."""

    __slots__ = ("cdata", "_keep")

    def __init__(self, hs256: Any, have_jwks: bool, max_len: int, userclaimfield: Optional[str],
                 client_ids: bool) -> None:
        pol = ffi.new("aj_policy *")
        pol.hs256 = hs256 if hs256 is not None else ffi.NULL
        pol.have_jwks = 1 if have_jwks else 0
        pol.max_len = max_len
        ucf = None
        if userclaimfield:
            ucf = ffi.new("uint8_t[]", userclaimfield.encode("utf-8"))
            pol.userclaimfield = ucf
            pol.userclaimfield_len = len(userclaimfield.encode("utf-8"))
        pol.flags = lib.AJ_POL_CLIENT_IDS if client_ids else 0
        self.cdata = pol
        self._keep = (hs256, ucf)


def verify(pol: Policy, tok: bytes, now: int) -> Tuple[List[int], Any]:
    """One token: its result fields and the scratch (an ``int64_t[]``) they
    point into. ``now``: int64, or :data:`NOW_CLOCK`."""
    n = len(tok)
    words = _SMALL_WORDS if n <= _SMALL else (lib.aj_scratch_need(n) + 7) // 8
    buf = _alloc("int64_t[]", words)
    lib.aj_verify(pol.cdata, tok, n, now, buf, words * 8)
    return ffi.unpack(buf, NFIELDS), buf


def verify_many(pol: Policy, toks: Sequence[bytes], now: int) -> Tuple[List[List[int]], Any]:
    """Many tokens in one call: each token's result fields, and the buffer
    their offsets point into (from its start)."""
    n = len(toks)
    packed = b"".join(toks)
    lens = ffi.new("size_t[]", [len(t) for t in toks])
    work_cap = lib.aj_batch_work_need(pol.cdata, len(packed))
    out_cap = lib.aj_batch_out_need(n, len(packed))
    work = _alloc("int64_t[]", (work_cap + 15) // 8)
    work16 = work if int(ffi.cast("uintptr_t", work)) % 16 == 0 else ffi.cast("int64_t *", work) + 1
    out = _alloc("int64_t[]", (out_cap + 7) // 8)
    rc = lib.aj_verify_many(pol.cdata, packed, len(packed), lens, n, now, work16, work_cap,
                            out, out_cap)
    raise_for_status(rc, "auth/jwt batch")
    flat = ffi.unpack(out, n * NFIELDS)
    return [flat[i:i + NFIELDS] for i in range(0, n * NFIELDS, NFIELDS)], out


def field_bytes(buf: Any, off: int, length: int) -> bytes:
    """The bytes a result's (offset, length) pair names in its buffer."""
    return ffi.buffer(buf)[off:off + length]


__all__ = ["ALG_HS256", "ALG_RS256", "CLAIM_NAMES", "FIELDS", "NOW_CLOCK", "Policy",
           "field_bytes", "verify", "verify_many"]
