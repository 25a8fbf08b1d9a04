"""auth/jwt token verification in one C call per token (``csrc/jwtverify.h``).

:func:`verify` returns the token's ``aj_result`` as a list of ints (indexed
by the constants below) and the scratch buffer its offsets point into;
:func:`verify_many` does the same for many tokens in one call.
"""
from __future__ import annotations

import struct
import threading
from typing import Any, List, Optional, Sequence, Tuple

from ._ffi import ffi, lib
from .status import raise_for_status

#: aj_result's fields, in order (every one an int64_t).
FIELDS = ("status", "alg", "exp", "iat", "user_off", "user_len", "uid", "gid", "err_claim",
          "user_claim", "alg_off", "alg_len", "kid_off", "kid_len", "id_off", "id_len",
          "signing_len", "sig_off", "sig_len", "sig_status", "claims_status")
(STATUS, ALG, EXP, IAT, USER_OFF, USER_LEN, UID, GID, ERR_CLAIM, USER_CLAIM, ALG_OFF, ALG_LEN,
 KID_OFF, KID_LEN, ID_OFF, ID_LEN, SIGNING_LEN, SIG_OFF, SIG_LEN, SIG_STATUS,
 CLAIMS_STATUS) = range(len(FIELDS))
NFIELDS = len(FIELDS)
assert ffi.sizeof("aj_result") == 8 * NFIELDS
assert all(ffi.offsetof("aj_result", f) == 8 * i for i, f in enumerate(FIELDS))
_RESULT = struct.Struct(f"={NFIELDS}q")

ALG_HS256 = lib.AJ_ALG_HS256
ALG_RS256 = lib.AJ_ALG_RS256
NOW_CLOCK = lib.AJ_NOW_CLOCK
INT64_MAX = 2 ** 63 - 1

#: AJ_CL_* index -> claim name (err_claim, user_claim; the last is userclaimfield's).
CLAIM_NAMES = ("exp", "iat", "uid", "gid", "id", "sun", "username", None)
assert lib.AJ_CL_USERCLAIM == len(CLAIM_NAMES) - 1 and lib.AJ_CL_SUN == CLAIM_NAMES.index("sun")

# Scratch is written before it is read: no need to zero it.
_alloc = ffi.new_allocator(should_clear_after_alloc=False)
#: Tokens up to this many bytes use the calling thread's reusable scratch.
SMALL_TOKEN = 4096


class _Scratch:
    """A scratch region and a memoryview of it (results are read through the view)."""

    __slots__ = ("buf", "cap", "view")

    def __init__(self, token_len: int) -> None:
        words = (lib.aj_scratch_need(token_len) + 7) // 8
        self.buf = _alloc("int64_t[]", words)
        self.cap = words * 8
        self.view = memoryview(ffi.buffer(self.buf))


_local = threading.local()


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


_aj_verify = lib.aj_verify
#: The fields a verified HS256 token's credential needs (status .. gid).
HEAD = 8
_HEAD = struct.Struct(f"={HEAD}q")


def verify(pol: Policy, tok: bytes, now: int) -> Tuple[Tuple[int, ...], memoryview]:
    """One token: its result's first :data:`HEAD` fields (:func:`result`
    reads them all) and a view of the scratch the offsets point into.
    ``now``: int64, or :data:`NOW_CLOCK`. A token of at most
    :data:`SMALL_TOKEN` bytes uses the calling thread's scratch: read what
    you need from the view before this thread's next call."""
    n = len(tok)
    if n <= SMALL_TOKEN:
        try:
            s = _local.scratch
        except AttributeError:
            s = _local.scratch = _Scratch(SMALL_TOKEN)
    else:
        s = _Scratch(n)
    _aj_verify(pol.cdata, tok, n, now, s.buf, s.cap)
    return _HEAD.unpack_from(s.view), s.view


def result(view: memoryview) -> Tuple[int, ...]:
    """Every field of the result :func:`verify` left at the start of ``view``."""
    return _RESULT.unpack_from(view)


def verify_many(pol: Policy, packed: bytes, lens: Sequence[int],
                now: int) -> Tuple[List[Tuple[int, ...]], memoryview]:
    """Many tokens in one call, back to back in ``packed`` (token i
    ``lens[i]`` bytes): each token's result fields, and a view of the
    buffer their offsets point into (from its start)."""
    n = len(lens)
    clens = ffi.new("size_t[]", lens)
    work_cap = lib.aj_batch_work_need(pol.cdata, len(packed))
    out_cap = lib.aj_batch_out_need(n, len(packed))
    work = _alloc("int64_t[]", (work_cap + 15) // 8)
    work16 = work if int(ffi.cast("uintptr_t", work)) % 16 == 0 else work + 1
    out = _alloc("int64_t[]", (out_cap + 7) // 8)
    raise_for_status(lib.aj_verify_many(pol.cdata, packed, len(packed), clens, n, now, work16,
                                        work_cap, out, out_cap), "auth/jwt batch")
    view = memoryview(ffi.buffer(out))
    return list(_RESULT.iter_unpack(view[:n * _RESULT.size])), view


def field_bytes(view: memoryview, off: int, length: int) -> bytes:
    """The bytes a result's (offset, length) pair names in its buffer."""
    return view[off:off + length].tobytes()


def field_str(view: memoryview, off: int, length: int) -> str:
    """The same as UTF-8 text (the C scanner validated it)."""
    return str(view[off:off + length], "utf-8")


__all__ = ["ALG_HS256", "ALG_RS256", "CLAIM_NAMES", "FIELDS", "HEAD", "NOW_CLOCK", "Policy", "result",
           "field_bytes", "field_str", "verify", "verify_many"]
