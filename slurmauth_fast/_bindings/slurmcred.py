"""auth/slurm credentials (``csrc/slurmcred.h``): key sets, verification
policies, the per-thread scratch and batch buffers, single and batch
verification, and how to read an ``sc_result``.

Buffers: each thread has one scratch region for single verifications
(:func:`scratch`, grown on demand; a result is read before the thread's next
call) and one work area for batches. Batch outputs come from a small pool:
:func:`out_buffer` takes one, :func:`release_out` gives it back once nothing
reads it any more (``VerifiedBatch.release``).
"""
from __future__ import annotations

import struct
import threading
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ._ffi import ffi, lib
from ._layout import fields_format, offset

#: Every context Slurm signs, in the C core's SC_CTX_* order (bit i of a mask).
CONTEXTS: Tuple[str, ...] = ("auth", "sack", "launch", "sbcast", "net")
assert all(getattr(lib, f"SC_CTX_{c.upper()}") == i for i, c in enumerate(CONTEXTS))

SHAPE_LIMIT = lib.SC_SHAPE_LIMIT
BATCH_SEP = bytes([lib.SC_BATCH_SEP])
OBJ_ID, OBJ_SBCAST, OBJ_NET = 1, 2, 4
#: Offset of host, cluster and payload (back to back) after an sc_result.
RESULT_SPACE = lib.sc_result_space()
#: Largest batch buffer a thread (work) or the pool (outputs) keeps between calls.
BATCH_KEEP = 4 << 20
BASE_SCRATCH = 8192
#: The largest scratch a thread keeps between calls: what the longest token a
#: default Verifier accepts (jws.DEFAULT_MAX_TOKEN, 256 KiB) needs. A call that
#: needs more (a Verifier with a larger max_len) gets a buffer of its own,
#: dropped after it.
SCRATCH_KEEP_MAX = lib.sc_scratch_need(256 * 1024)
_POOL_MAX = 4

# ---- key sets and policies ---------------------------------------------------


class Keyset:
    """The C view (``sc_keyset``) of an immutable key list; holds every buffer
    the C structs point into for as long as it lives."""

    __slots__ = ("cdata", "_keep")

    def __init__(self, keys: Sequence[Tuple[Optional[bytes], bytes, Any, int]], default_index: int,
                 by_kid: bool) -> None:
        """``keys``: (kid bytes or None, base64url header segment, HS256 key
        cdata, exp or 0) for each key."""
        c_keys = ffi.new("sc_key[]", len(keys))
        keep: List[Any] = [c_keys]
        for i, (kid, hdr, key, exp) in enumerate(keys):
            if kid is not None:
                keep.append(ffi.new("char[]", kid))
                c_keys[i].kid = keep[-1]
                c_keys[i].kid_len = len(kid)
            keep.append(ffi.new("char[]", hdr))
            c_keys[i].hdr = keep[-1]
            c_keys[i].hdr_len = len(hdr)
            c_keys[i].key = key
            c_keys[i].exp = exp
        ks = ffi.new("sc_keyset *")
        ks.keys = c_keys
        ks.nkeys = len(keys)
        ks.default_index = default_index
        ks.by_kid = 1 if by_kid else 0
        self.cdata = ks
        self._keep = keep


#: sc_policy.flags: read the "id" object (AuthInfo=use_client_ids)
POL_CLIENT_IDS = lib.SC_POL_CLIENT_IDS


def policy(max_len: int, verifier_uid: int, contexts: int, flags: int = 0) -> Any:
    """An ``sc_policy *``: token size limit, verifier uid, context mask, SC_POL_* flags."""
    pol = ffi.new("sc_policy *")
    pol.max_len = max_len
    pol.verifier_uid = verifier_uid
    pol.contexts = contexts
    pol.flags = flags
    return pol


# ---- single verification -----------------------------------------------------

#: sc_verify(keyset, policy, token, len, now, scratch, cap) -> status
sc_verify: Callable[..., int] = lib.sc_verify
scratch_need: Callable[[int], int] = lib.sc_scratch_need
#: sc_verify's status for a scratch smaller than sc_scratch_need(token length)
E_SCRATCH: int = lib.SC_E_SCRATCH

#: Per-thread buffers: ``.s`` the scratch tuple (see :func:`scratch`), ``.w`` the batch work
#: area, ``.a`` a batch's token addresses (see :func:`verify_list`).
local = threading.local()


def scratch(need: int = 0) -> Tuple[bytearray, Any, int, int]:
    """This thread's scratch region, grown to ``need`` bytes: (buffer, cffi
    pointer, size, longest token it surely fits). Callers read ``local.s``
    first and call this when it is missing or too small. Size ``need`` by
    the token, never by what carries it (a frame). Past
    :data:`SCRATCH_KEEP_MAX` the region is the caller's alone: the thread
    keeps the one it had."""
    s: Optional[Tuple[bytearray, Any, int, int]] = getattr(local, "s", None)
    if s is None or s[2] < need:
        size = max(need, BASE_SCRATCH)
        buf = bytearray(size)
        small = size // 4 - 64  # sc_scratch_need(n) < 4n + 64 + 64
        assert lib.sc_scratch_need(small) <= size
        s = (buf, ffi.from_buffer(buf), size, small)
        if size <= SCRATCH_KEEP_MAX:
            local.s = s
    return s


# ---- batches -------------------------------------------------------------------

#: Alignment of sc_verify_many's work and output buffers: C needs 16 and 8
#: bytes; whole cache lines for its token regions and records cost ~5 ns less
#: per token (C harness, 1000 tokens per call).
CACHE_LINE = 64

_UINTPTR = ffi.typeof("uintptr_t")


def _aligned(size: int, align: int) -> Tuple[bytearray, Any, int]:
    """A zeroed buffer of at least ``size`` bytes, a cffi pointer to an
    ``align``-aligned start in it and that start's offset."""
    return _at_aligned(bytearray(size + align), align)


def _at_aligned(buf: bytearray, align: int) -> Tuple[bytearray, Any, int]:
    ptr = ffi.from_buffer(buf)
    base = -int(ffi.cast(_UINTPTR, ptr)) % align
    return buf, ptr + base, base


def _batch_work(pol: Any, packed_len: int) -> Tuple[Any, int]:
    """This thread's working area for sc_verify_many (two token regions),
    grown to what ``packed_len`` bytes need and kept while at most BATCH_KEEP:
    a fresh megabyte per call costs page faults and zeroing the C work waits on."""
    need = lib.sc_batch_work_need(pol, packed_len)
    w = getattr(local, "w", None)
    if w is None or w[2] < need:
        buf, ptr, _ = _aligned(need, CACHE_LINE)
        w = (buf, ptr, need)   # the bytearray stays referenced while ptr is used
        if need <= BATCH_KEEP:
            local.w = w
    return w[1], w[2]


# Output buffers of released batches, for the next verify_many: a fresh
# buffer per call would cost page faults (zero-filled by the kernel) on every
# call. Every byte a batch reads is written by the call that filled it.
_pool: List[bytearray] = []


def out_buffer(need: int) -> Tuple[bytearray, Any, int]:
    """A batch output buffer of ``need`` bytes (cache-line aligned): a pooled
    one when one is big enough. Returns (buffer, aligned pointer, its offset)."""
    while _pool:
        try:
            buf = _pool.pop()
        except IndexError:        # another thread took the last one
            break
        if len(buf) >= need + CACHE_LINE:
            return _at_aligned(buf, CACHE_LINE)
    return _aligned(need, CACHE_LINE)


def release_out(buf: bytearray) -> None:
    """Give a batch output buffer back for reuse: nothing may read it any more."""
    if len(buf) <= BATCH_KEEP and len(_pool) < _POOL_MAX:
        _pool.append(buf)


def pooled() -> List[bytearray]:
    """The pooled output buffers (for tests)."""
    return _pool


def _batch_buffers(pol: Any, n: int, total: int) -> Tuple[Any, int, bytearray, Any, int, int]:
    """A batch call's buffers for n tokens of ``total`` bytes: this thread's
    work area and its size, then an output buffer, its aligned pointer and
    offset, and the size the call is given."""
    work, wcap = _batch_work(pol, total)
    need = lib.sc_batch_out_need(n, total)
    out, optr, base = out_buffer(need)
    return work, wcap, out, optr, base, need


def verify_many(ks: Any, pol: Any, packed: bytes, n: int, now: int) -> Tuple[int, bytearray, int]:
    """sc_verify_many over ``packed`` (n tokens separated by BATCH_SEP):
    (status, output buffer, offset of the output in it). The GIL is released
    for the C call."""
    plen = len(packed)
    work, wcap, out, optr, base, need = _batch_buffers(pol, n, plen)
    rc = lib.sc_verify_many(ks, pol, packed, plen, n, now, work, wcap, optr, need)
    return rc, out, base


def _addresses(n: int) -> Tuple[Any, Any, Any]:
    """This thread's arrays for n tokens' addresses and lengths, and a total:
    grown as needed, kept while at most ADDRESSES_KEEP tokens long."""
    a = getattr(local, "a", None)
    if a is None or len(a[1]) < n:
        a = (ffi.new("const char *[]", n), ffi.new("size_t[]", n), ffi.new("size_t *"))
        if n <= ADDRESSES_KEEP:
            local.a = a
    return a


#: Tokens per batch whose address arrays (16 bytes a token) a thread keeps.
ADDRESSES_KEEP = 1 << 16


def verify_list(ks: Any, pol: Any, toks: Tuple[Any, ...], now: int
                ) -> Optional[Tuple[int, bytearray, int]]:
    """sc_verify_list over the bytes objects of ``toks`` where they are (C
    reads their addresses from the tuple: nothing is copied), as
    :func:`verify_many`; None when an item is not a bytes object. ``toks``
    must be a tuple: it keeps the objects alive and in place for the call."""
    n = len(toks)
    ptrs, lens, total = _addresses(n)
    if lib.sa_py_bytes_items(id(toks), ptrs, lens, n, total) != n:
        return None
    work, wcap, out, optr, base, need = _batch_buffers(pol, n, total[0])
    rc = lib.sc_verify_list(ks, pol, ptrs, lens, n, now, work, wcap, optr, need)
    return rc, out, base


# Batch output columns: uint64 rec_off[n] | int32 status[n] | uint32 uid[n] | uint32 gid[n]
COL_REC, COL_STATUS, COL_UID, COL_GID = 0, 8, 12, 16


# ---- reading an sc_result ----------------------------------------------------------

_R = "sc_result"
ERR_CLAIM_AT = offset(_R, "err_claim")
_read_err_claim = struct.Struct("=" + fields_format(_R, "err_claim")[0]).unpack_from
_read_objects_mask = struct.Struct("=" + fields_format(_R, "objects")[0]).unpack_from
_LENS_FMT, _ = fields_format(_R, "host_len", "cluster_len", "payload_len")
_read_lens = struct.Struct("=" + _LENS_FMT).unpack_from
_read_objects = struct.Struct("=" + fields_format(
    _R, "id_off", "id_len", "sbcast_off", "sbcast_len", "net_off", "net_len")[0]).unpack_from
#: ver .. shape: the fields a sender repeats from token to token, read as one bytes object
REPEATED_AT = offset(_R, "ver")
REPEATED_LEN = offset(_R, "host_len") - REPEATED_AT
_TIMES, _TIMES_END = fields_format(_R, "iat", "exp")
assert _TIMES_END == REPEATED_AT
_ALL, _ALL_END = fields_format(_R, "iat", "exp", "ver", "ruid", "uid", "gid", "context",
                               "key_index", "objects", "shape")
assert _ALL_END == REPEATED_AT + REPEATED_LEN


def err_claim(buf: bytearray, base: int) -> int:
    """The SC_CL_* a refused token's result names, or -1."""
    return int(_read_err_claim(buf, base)[0])


def objects_present(buf: bytearray, base: int) -> int:
    """The OBJ_* bits of a verified result: which of "id", "sbcast", "net" it holds."""
    return int(_read_objects_mask(buf, base)[0])


def lengths(buf: bytearray, base: int) -> Tuple[int, int, int]:
    """host_len, cluster_len, payload_len of a verified result (-1: absent)."""
    return _read_lens(buf, base)  # type: ignore[no-any-return]


def objects(buf: bytearray, base: int) -> Tuple[int, int, int, int, int, int]:
    """Offsets and lengths of the raw "id", "sbcast" and "net" JSON objects."""
    return _read_objects(buf, base)  # type: ignore[no-any-return]


def result_readers(hl: int, cl: int, pl: int) -> Tuple[Callable[..., tuple], Callable[..., tuple]]:
    """Two ``unpack_from`` functions for a result whose host, cluster and
    payload have these lengths (-1: absent):

    * repeated: (iat, exp, the ver..shape bytes, host + cluster bytes, payload bytes)
    * every field: (iat, exp, ver, ruid, uid, gid, context, key_index, objects,
      shape, host, cluster, payload)"""
    tail = RESULT_SPACE - (REPEATED_AT + REPEATED_LEN)
    repeated = struct.Struct(
        f"={_TIMES}{REPEATED_LEN}s{tail}x{hl + max(cl, 0)}s{max(pl, 0)}s").unpack_from
    every = struct.Struct(f"={_ALL}{tail}x{hl}s{max(cl, 0)}s{max(pl, 0)}s").unpack_from
    return repeated, every


def shape_of(hl: int, cl: int, pl: int) -> int:
    """The ``shape`` C writes for these lengths (when all are below SHAPE_LIMIT), else -2."""
    if hl < SHAPE_LIMIT and cl < SHAPE_LIMIT and pl < SHAPE_LIMIT:
        return hl + ((cl + 1) << 21) + ((pl + 1) << 42)
    return -2


#: sc_verify_many's status for a separated batch that does not hold n tokens.
E_BATCH_SPLIT = lib.SC_E_BATCH_SPLIT
