"""auth/slurm verification: :class:`Verifier` (one token, or many in one C
call) and :class:`VerifiedBatch`, the columns and records of a batch.

Verification runs entirely in C (``csrc/slurmcred.c``), in the order of
Slurm's ``decode_jwt()``: size limit, split, header, key by kid (or the
default key), key expiry, HMAC in constant time, alg exactly HS256, claims,
exp against now, ruid against the verifier's uid, the required claims
iat/uid/gid/host/context, the allowed context, the payload decode and the
uid/gid range. Python turns the C result into a
:class:`~slurmauth_fast.credential.Credential` (:mod:`slurmauth_fast.sender_cache`)
and parses the "id" object when present.
"""
from __future__ import annotations

import array
import os
from typing import Any, Dict, Iterable, Iterator, List, Literal, Optional, Sequence, Union

from ._bindings import slurmcred as _sc
from ._bindings.status import credential_failure, error_for_status
from ._bounded import BoundedCache
from .credential import CONTEXTS, RPC_CONTEXTS, Credential, _uint32
from .exceptions import BadArgumentError, BadArgumentTypeError, CredentialError, HeaderError
from .jws import DEFAULT_MAX_TOKEN, TokenLike, as_token_bytes
from .keys import Keyring
from .sender_cache import credential as _credential

_sc_verify = _sc.sc_verify
_scratch_need = _sc.scratch_need
_local = _sc.local
_scratch = _sc.scratch
_err_claim = _sc.err_claim


#: Contexts whose credentials always have their "id" read (cred/slurm: job launch and
#: sbcast credentials carry the user's identity for the node), use_client_ids or not.
_ID_CONTEXTS = ("launch", "sbcast")


def _policy_flags(contexts: Sequence[str], use_client_ids: bool) -> int:
    """sc_policy flags: read "id" with use_client_ids, or for a launch/sbcast credential."""
    reads_id = use_client_ids or any(c in _ID_CONTEXTS for c in contexts)
    return _sc.POL_CLIENT_IDS if reads_id else 0


def _context_mask(contexts: Union[str, Iterable[str]]) -> int:
    if isinstance(contexts, str):
        contexts = (contexts,)
    mask = 0
    for c in contexts:
        if c not in CONTEXTS:
            raise BadArgumentError(f"unknown credential context {c!r}; known: {', '.join(CONTEXTS)}")
        mask |= 1 << CONTEXTS.index(c)
    if not mask:
        raise BadArgumentError("at least one context must be allowed")
    return mask


def _failure(rc: int, buf: bytearray, base: int) -> CredentialError:
    """The error for a token C refused with ``rc`` (its result at ``buf[base:]``)."""
    return credential_failure(rc, _err_claim(buf, base) if rc >= 20 else -1)


class Verifier:
    """Verifies auth/slurm credentials for one verifier uid and set of contexts.

    ``verifier_uid`` (default: this process's uid) is what a token's ruid must
    equal unless it is 4294967295. ``contexts`` are the contexts accepted:
    ("auth", "sack") for RPCs (Slurm's rule), ("launch",) for job credentials,
    ("sbcast",) or ("net",) for those. ``use_client_ids`` is AuthInfo's
    option of that name: the credential's "id" object is read into
    :attr:`Credential.identity` (and a malformed one refuses the credential);
    without it an RPC credential's "id" is skipped like any unknown claim, as
    slurmctld does (launch and sbcast credentials always have it read, as
    cred/slurm does).
    Thread-safe: each thread has its own scratch buffer, and the keyring may
    be reloaded at any time."""

    def __init__(self, keyring: Keyring, *, verifier_uid: Optional[int] = None,
                 contexts: Union[str, Sequence[str]] = RPC_CONTEXTS,
                 max_len: int = DEFAULT_MAX_TOKEN, use_client_ids: bool = False) -> None:
        if not isinstance(keyring, Keyring):
            raise BadArgumentTypeError("keyring must be a Keyring")
        if type(max_len) is not int or max_len <= 0:
            raise BadArgumentError("max_len must be a positive integer")
        self.keyring = keyring
        self.verifier_uid = _uint32(os.getuid() if verifier_uid is None else verifier_uid,
                                    "verifier_uid")
        self.contexts = (contexts,) if isinstance(contexts, str) else tuple(contexts)
        self.max_len = max_len
        self.use_client_ids = bool(use_client_ids)
        self._policy = _sc.policy(max_len, self.verifier_uid, _context_mask(self.contexts),
                                  _policy_flags(self.contexts, self.use_client_ids))
        self._policies: BoundedCache[Any, Any] = BoundedCache(64)
        #: rpc.verify_rpc's FrameVerifier for the default options, and for
        #: other options by their values: each built once, on first use
        self.frame_verifier: Any = None
        self.frame_verifiers: BoundedCache[Any, Any] = BoundedCache(64)

    @property
    def c_policy(self) -> Any:
        """The ``sc_policy *`` of this verifier, for other C entry points (internal)."""
        return self._policy

    def _policy_for(self, context: Union[str, Sequence[str]]) -> Any:
        key = context if isinstance(context, str) else tuple(context)
        pol = self._policies.get(key)
        if pol is None:
            ctxs = (key,) if isinstance(key, str) else key
            pol = _sc.policy(self.max_len, self.verifier_uid, _context_mask(ctxs),
                             _policy_flags(ctxs, self.use_client_ids))
            self._policies.put(key, pol)
        return pol

    def verify(self, token: TokenLike, *, now: Optional[int] = None,
               context: Optional[Union[str, Sequence[str]]] = None) -> Credential:
        """Verify one credential; raise a CredentialError subclass naming the
        first rule broken (in Slurm's order). ``context`` narrows the accepted
        contexts for this call."""
        if type(token) is bytes:
            tok = token
        elif type(token) is str:
            try:
                tok = token.encode("ascii")
            except UnicodeEncodeError:
                raise HeaderError("token contains non-ASCII characters") from None
        else:
            tok = as_token_bytes(token)
        if now is None:
            when = -1
        elif type(now) is int and now >= 0:
            when = now
        else:
            raise BadArgumentError("now must be a non-negative integer unix time")
        n = len(tok)
        try:
            buf, ptr, cap, small = _local.s
        except AttributeError:
            buf, ptr, cap, small = _scratch(0)
        if n > small and n <= self.max_len:
            buf, ptr, cap, small = _scratch(_scratch_need(n))
        snap = self.keyring.snapshot()
        rc = _sc_verify(snap.keyset, self._policy if context is None else self._policy_for(context),
                        tok, n, when, ptr, cap)
        if rc:
            raise _failure(rc, buf, 0)
        return _credential(buf, 0, snap)

    def verify_many(self, tokens: Sequence[TokenLike], *,
                    now: Optional[int] = None) -> "VerifiedBatch":
        """Verify many credentials in one C call (the GIL is released for it;
        pairs of tokens have their MACs computed together). Every token goes
        through :meth:`verify`'s rules in :meth:`verify`'s order. Bytes tokens
        are read by C where they are (nothing is copied: pass a tuple to save
        even the conversion of a list); str tokens are joined once.

        The result keeps per-token columns (status, uid, gid) filled by C, so
        no Python object is built per token unless asked for: a controller
        shim admitting RPCs by uid reads the columns, and builds the
        :class:`Credential` (or error) of a token only when it needs more.
        Its buffer is reused once released (:meth:`VerifiedBatch.release`, or
        a ``with`` block)."""
        if now is not None and (type(now) is not int or now < 0):
            raise BadArgumentError("now must be a non-negative integer unix time")
        when = -1 if now is None else now
        toks = tokens if type(tokens) is tuple else tuple(tokens)
        n = len(toks)
        refused: Dict[int, CredentialError] = {}
        snap = self.keyring.snapshot()
        reads_id = self.use_client_ids
        # the common case: all bytes, read by C where they are
        done = _sc.verify_list(snap.keyset, self._policy, toks, when)
        if done is not None:
            return _batch(*done, n, snap, refused, reads_id)
        packed = _join_str(toks)
        if packed is not None:
            rc, out, base = _sc.verify_many(snap.keyset, self._policy, packed, n, when)
            if rc != _SPLIT:
                return _batch(rc, out, base, n, snap, refused, reads_id)
            _sc.release_out(out)
        # Mixed types, a non-ASCII str or a str holding the separator: convert
        # one by one (a token that is not even ASCII goes to C empty and is
        # answered with its own error).
        as_bytes: List[bytes] = []
        for i, t in enumerate(toks):
            try:
                as_bytes.append(t if type(t) is bytes else as_token_bytes(t))
            except CredentialError as e:
                refused[i] = e
                as_bytes.append(b"")
        converted = tuple(as_bytes)
        done = _sc.verify_list(snap.keyset, self._policy, converted, when)
        assert done is not None                     # every item is bytes
        return _batch(*done, n, snap, refused, reads_id)

    def verify_batch(self, tokens: Sequence[TokenLike], *,
                     now: Optional[int] = None) -> List[Union[Credential, CredentialError]]:
        """:meth:`verify_many`, answered as a list: in order, a Credential or
        the CredentialError for each token."""
        with self.verify_many(tokens, now=now) as batch:
            return batch.to_list()


_SPLIT = _sc.E_BATCH_SPLIT


def _batch(rc: int, out: bytearray, base: int, n: int, snap: Any,
           refused: Dict[int, CredentialError], reads_id: bool) -> "VerifiedBatch":
    if rc:   # a bug (buffer sizing), never user input
        _sc.release_out(out)
        raise error_for_status(rc, "verify_many")
    batch = VerifiedBatch(out, base, n, snap, refused)
    if reads_id:
        batch._refuse_bad_identities()
    return batch


_SEP_STR = _sc.BATCH_SEP.decode()


def _join_str(tokens: Sequence[TokenLike]) -> Optional[bytes]:
    """All tokens in one buffer, separated by SC_BATCH_SEP, when they are all
    ASCII str (one join and one encode, no per-token work in Python); None
    otherwise. A token holding the separator is caught by C, which then
    counts more tokens than were given (SC_E_BATCH_SPLIT)."""
    try:
        return _SEP_STR.join(tokens).encode("ascii")  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        return None


_REC, _STATUS, _UID, _GID = _sc.COL_REC, _sc.COL_STATUS, _sc.COL_UID, _sc.COL_GID


class VerifiedBatch:
    """The outcome of :meth:`Verifier.verify_many` for n tokens, in order.

    ``status``, ``uid`` and ``gid`` are columns written by the C core (each a
    read-only memoryview of C ints, copied out): status 0 means verified,
    any other value is the C status code of the first rule the token broke
    (-1: refused outside C: a str token with non-ASCII characters, or, under
    use_client_ids, a malformed "id" object, which :meth:`Verifier.verify`
    refuses too); uid and gid are 0 for those.
    Indexing gives the :class:`Credential` or the
    :class:`~slurmauth_fast.errors.CredentialError` of one token, built from
    the record C kept for it; :meth:`to_list` builds them all.

    :meth:`release` (or leaving a ``with`` block) hands the buffer back for
    the next batch; the columns and credentials already taken stay valid (they
    are copies), but the batch itself cannot be read any more."""

    __slots__ = ("_out", "_base", "_n", "_snap", "_refused")

    def __init__(self, out: bytearray, base: int, n: int, snap: Any,
                 refused: Dict[int, CredentialError]) -> None:
        self._out: Optional[bytearray] = out
        self._base = base
        self._n = n
        self._snap = snap
        self._refused = refused

    def release(self) -> None:
        """Give the buffer back for reuse (idempotent)."""
        out, self._out = self._out, None
        if out is not None:
            _sc.release_out(out)

    def __enter__(self) -> "VerifiedBatch":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _buf(self) -> bytearray:
        out = self._out
        if out is None:
            raise BadArgumentError("this VerifiedBatch has been released")
        return out

    def _column(self, at: int, width: int, fmt: Literal["i", "I", "Q"]) -> "memoryview[int]":
        """A view of a column in the buffer: for this object's own use only."""
        start = self._base + at * self._n
        return memoryview(self._buf())[start:start + width * self._n].cast(fmt)

    def _copy(self, at: int, width: int, fmt: Literal["i", "I"]) -> "memoryview[int]":
        """A column as the caller gets it: a read-only copy (4 bytes a token),
        so the buffer can be reused once this object is released."""
        start = self._base + at * self._n
        return memoryview(bytes(self._buf()[start:start + width * self._n])).cast(fmt)

    def _refuse_bad_identities(self) -> None:
        """Under use_client_ids, a verified token whose "id" object does not parse is
        refused here, as :meth:`Verifier.verify` refuses it (only tokens carrying an
        object are read)."""
        out = self._buf()
        recs = self._column(_REC, 8, "Q")
        for i, st in enumerate(self._column(_STATUS, 4, "i")):
            if st:
                continue
            at = self._base + recs[i]
            if _sc.objects_present(out, at):
                try:
                    _credential(out, at, self._snap)
                except CredentialError as e:
                    self._refused[i] = e

    def _refused_zeroed(self, at: int, fmt: Literal["i", "I"], value: int) -> "memoryview[int]":
        """A column with ``value`` where a token was refused outside C."""
        if not self._refused:
            return self._copy(at, 4, fmt)
        col = self._column(at, 4, fmt).tolist()
        for i in self._refused:
            col[i] = value
        return memoryview(array.array(fmt, col).tobytes()).cast(fmt)

    @property
    def status(self) -> "memoryview[int]":
        """Per token: 0 verified, else the C status (-1: refused outside C)."""
        return self._refused_zeroed(_STATUS, "i", -1)

    @property
    def uid(self) -> "memoryview[int]":
        """Per token: the credential's uid (0 where status is not 0)."""
        return self._refused_zeroed(_UID, "I", 0)

    @property
    def gid(self) -> "memoryview[int]":
        """Per token: the credential's gid (0 where status is not 0)."""
        return self._refused_zeroed(_GID, "I", 0)

    @property
    def verified(self) -> int:
        """How many tokens verified."""
        refused = self._refused
        return sum(1 for i, st in enumerate(self._column(_STATUS, 4, "i"))
                   if not st and i not in refused)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        if self._out is None:
            return f"<VerifiedBatch of {self._n} tokens, released>"
        return f"<VerifiedBatch of {self._n} tokens, {self.verified} verified>"

    def __getitem__(self, i: int) -> Union[Credential, CredentialError]:
        if type(i) is not int:
            raise TypeError("VerifiedBatch indices must be integers")
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("VerifiedBatch index out of range")
        return self._answer(i, self._column(_STATUS, 4, "i")[i], self._column(_REC, 8, "Q")[i],
                            self._buf())

    def _answer(self, i: int, st: int, off: int, out: bytearray) -> Union[Credential, CredentialError]:
        """Token i's Credential or error, from its status and record offset."""
        if self._refused and i in self._refused:
            return self._refused[i]
        try:
            if st:
                return _failure(st, out, self._base + off)
            return _credential(out, self._base + off, self._snap)
        except CredentialError as e:   # a malformed "id"/"sbcast"/"net" object
            return e

    def credential(self, i: int) -> Credential:
        """Token i's Credential; raises its CredentialError when it did not verify."""
        got = self[i]
        if isinstance(got, CredentialError):
            raise got
        return got

    def to_list(self) -> List[Union[Credential, CredentialError]]:
        """Every token's Credential or CredentialError, in order."""
        answer, out = self._answer, self._buf()
        return [answer(i, st, off, out) for i, (st, off) in
                enumerate(zip(self._column(_STATUS, 4, "i"), self._column(_REC, 8, "Q")))]

    def __iter__(self) -> Iterator[Union[Credential, CredentialError]]:
        return iter(self.to_list())


def verify_credential(keyring: Keyring, token: TokenLike, *, verifier_uid: Optional[int] = None,
                      contexts: Union[str, Sequence[str]] = RPC_CONTEXTS,
                      now: Optional[int] = None) -> Credential:
    """One-shot verification (builds a :class:`Verifier`; keep one for speed)."""
    return Verifier(keyring, verifier_uid=verifier_uid, contexts=contexts).verify(token, now=now)


__all__ = ["VerifiedBatch", "Verifier", "verify_credential"]
