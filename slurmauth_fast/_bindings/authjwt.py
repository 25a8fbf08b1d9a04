"""auth/jwt token verification in one C call per token (``csrc/jwtverify.h``).

:data:`verify_local` verifies a token into the calling thread's C scratch
and returns its status, :func:`local_view` shows that scratch; :func:`verify`
does the same for a token of any length with a scratch of its own. The
scratch holds the token's ``aj_result`` (read as a tuple of ints indexed by
the constants below, by :func:`head` or :func:`result`) and the bytes its
offsets point into. :func:`verify_many` returns every token's result for
many tokens in one call.
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
#: Tokens up to this many bytes are verified into the calling thread's own
#: C scratch (:data:`verify_local`); longer ones into one allocated per call.
LOCAL_TOKEN = lib.AJ_LOCAL_TOKEN
#: A status meaning "this token needs a scratch of its own" (:func:`verify`).
E_SCRATCH = lib.SC_E_SCRATCH


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

#: ``verify_local(policy.cdata, tok, len(tok), now) -> status``: a token of at
#: most :data:`LOCAL_TOKEN` bytes verified into the calling thread's C
#: scratch (its result: :func:`local_view`); a longer one gets
#: :data:`E_SCRATCH` at once, for :func:`verify`.
verify_local = lib.aj_verify_local
#: ``verify_local_now(policy.cdata, tok, len(tok)) -> status``: verify_local
#: at the current time (``now`` NOW_CLOCK), one argument less.
verify_local_now = lib.aj_verify_local_now

#: aj_scratch_need(token length): the scratch bytes a token needs.
scratch_need = lib.aj_scratch_need


def local_view() -> memoryview:
    """A view of the calling thread's C scratch, where :data:`verify_local`
    left its last result: read it before this thread's next call, and never
    keep it past the thread."""
    try:
        return _local.view  # type: ignore[no-any-return]
    except AttributeError:
        view = _local.view = memoryview(ffi.buffer(lib.aj_local_scratch(),
                                                   lib.aj_local_scratch_size()))
        return view


#: The fields a verified HS256 token's credential needs (status .. gid).
HEAD = 8
_HEAD = struct.Struct(f"={HEAD}q")


def verify(pol: Policy, tok: bytes, now: int) -> Tuple[int, memoryview]:
    """One token of any length into a scratch of its own: its status (0:
    verified, for HS256 entirely; for RS256 up to the signature, see
    ``csrc/jwtverify.h``) and a view of the scratch holding its result
    (:func:`head`, :func:`result`) and the bytes the result's offsets point
    into. ``now``: int64, or :data:`NOW_CLOCK`."""
    s = _Scratch(len(tok))
    return _aj_verify(pol.cdata, tok, len(tok), now, s.buf, s.cap), s.view


def head(view: memoryview) -> Tuple[int, ...]:
    """The first :data:`HEAD` fields of the result at the start of ``view``
    (what a verified HS256 token's credential needs)."""
    return _HEAD.unpack_from(view)


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


__all__ = ["ALG_HS256", "ALG_RS256", "CLAIM_NAMES", "E_SCRATCH", "FIELDS", "HEAD", "LOCAL_TOKEN",
           "NOW_CLOCK", "Policy", "field_bytes", "field_str", "head", "local_view", "result",
           "scratch_need", "verify", "verify_local", "verify_many"]
