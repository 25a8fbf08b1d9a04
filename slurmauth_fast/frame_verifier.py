"""Verifying whole RPC frames as slurmctld does: :class:`FrameVerifier`
(configured like AuthType + AuthAltTypes) and :func:`verify_rpc`.

A frame is parsed and its credential checked in one C call
(``sa_verify_frame``) for the plugins that have their rules in C: an
auth/slurm frame (plugin 103: token with Slurm's rules, then the body hash)
and an auth/jwt frame (plugin 102: the token, with
:class:`~slurmauth_fast.jwt.JWTVerifier`'s policy; the RS256 signature, the
packed username and the user database are then
:meth:`~slurmauth_fast.jwt.JWTVerifier.finish`'s). The verdict is complete: a
refused frame raises the exception of the step that refused it, with the
offset or claim at fault, and nothing is redone in Python. A frame of
another configured plugin has been parsed by that same call and is
dispatched on its plugin id: auth/munge (101: munged decodes it, then the
body hash). Every plugin answers with one :class:`VerifiedRpc`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional, Sequence, Tuple, Union

from ._bindings import authjwt as _aj
from ._bindings import frame as _fr
from ._bindings import slurmcred as _sc
from ._bindings.bodyhash import BLOCK_NULL_HASH, BLOCK_ZERO_HASH
from ._bindings.status import credential_failure, error_for_status
from .bodyhash import DEFAULT_HASH_PLUGINS, check_body_hash, hash_policy
from .exceptions import (BadArgumentError, BadArgumentTypeError, MissingCredentialError,
                         UnsupportedAuthPluginError)
from .pack import BytesLike
from .frame import (AUTH_JWT, AUTH_MUNGE, AUTH_SLURM, DEFAULT_VERSIONS, VERIFY_MAX_FRAME, RpcFrame,
                  _frame_from, auth_credential, frame_error, parse_options)
from .sender_cache import credential as _credential
from .keys import Keyring
from .verifier import Verifier

if TYPE_CHECKING:  # pragma: no cover
    from .credential import Credential
    from .jwt import JWTCredential, JWTVerifier
    from .munge import MungeContext, MungeCredential

#: Slurm's plugin names (AuthType, AuthAltTypes) and their wire ids.
PLUGINS: Dict[str, int] = {"auth/slurm": AUTH_SLURM, "auth/jwt": AUTH_JWT, "auth/munge": AUTH_MUNGE}
_NAMES = {v: k for k, v in PLUGINS.items()}


@dataclass(frozen=True)
class VerifiedRpc:
    """A frame whose credential verified (and, for auth/slurm and
    auth/munge, whose body hash matched). ``credential`` is the plugin's own
    record: a :class:`~slurmauth_fast.credential.Credential` (auth/slurm), a
    :class:`~slurmauth_fast.jwt.JWTCredential` (auth/jwt) or a
    :class:`~slurmauth_fast.munge.MungeCredential` (auth/munge)."""

    frame: RpcFrame
    credential: Union["Credential", "JWTCredential", "MungeCredential"]

    @property
    def uid(self) -> int:
        """The sender's uid."""
        return self.credential.uid

    @property
    def gid(self) -> int:
        """The sender's gid."""
        return self.credential.gid

    @property
    def plugin(self) -> int:
        """The frame's auth plugin id (103 auth/slurm, 102 auth/jwt, 101 auth/munge)."""
        return self.frame.auth_plugin  # type: ignore[return-value]


_new = object.__new__
_set = object.__setattr__
_local_frame = _fr.local
_frame_struct = _fr.frame_struct
_verify_frame = _fr.verify_frame
_NULL = _fr.NULL
_aj_scratch_need = _aj.scratch_need
_c_bytes = _fr.c_bytes
_local = _sc.local
_scratch = _sc.scratch
_scratch_need = _sc.scratch_need
_E_SCRATCH = _sc.E_SCRATCH


class FrameVerifier:
    """Verifies whole frames for the plugins a daemon is configured with.

    ``slurm`` (a :class:`~slurmauth_fast.verifier.Verifier`), ``jwt`` (a
    :class:`~slurmauth_fast.jwt.JWTVerifier`) and ``munge`` (a
    :class:`~slurmauth_fast.munge.MungeContext`) verify their plugin's
    credentials; ``auth_type`` and ``auth_alt_types`` name the plugins
    accepted, as slurm.conf does (default: every plugin given a verifier).
    ``block_null_hash``/``block_zero_hash`` are Slurm's
    CommunicationParameters and ``hash_plugins`` its HashPlugin list (default
    k12 only: a SHA3 body hash is refused, as slurmctld refuses it);
    ``length_prefix``, ``versions`` and
    ``max_frame`` are :func:`~slurmauth_fast.rpc.parse_frame`'s, turned into C
    options once, here; ``max_frame`` defaults to
    :data:`~slurmauth_fast.frame.VERIFY_MAX_FRAME` (64 MiB), not Slurm's 1 GiB.

    Memory: a frame is parsed (version, lengths, the cap) before anything is
    allocated for it, and the per-thread scratch is sized for the auth/slurm
    token (at most the policy's ``max_len``), never for the frame; a thread
    keeps at most ``_bindings.slurmcred.SCRATCH_KEEP_MAX`` of it."""

    def __init__(self, slurm: Optional[Verifier] = None, *, jwt: Optional["JWTVerifier"] = None,
                 munge: Optional["MungeContext"] = None, auth_type: Optional[str] = None,
                 auth_alt_types: Sequence[str] = (), block_null_hash: bool = False,
                 block_zero_hash: bool = False, hash_plugins: Iterable[str] = DEFAULT_HASH_PLUGINS,
                 length_prefix: bool = True, versions: Iterable[int] = DEFAULT_VERSIONS,
                 max_frame: int = VERIFY_MAX_FRAME) -> None:
        if slurm is not None and not isinstance(slurm, Verifier):
            raise BadArgumentTypeError("slurm must be a slurmauth_fast Verifier")
        given = {AUTH_SLURM: slurm, AUTH_JWT: jwt, AUTH_MUNGE: munge}
        if auth_type is None and not auth_alt_types:
            names = [n for n, i in PLUGINS.items() if given[i] is not None]
        else:
            names = ([auth_type] if auth_type is not None else []) + list(auth_alt_types)
        if not names:
            raise BadArgumentError("a FrameVerifier needs at least one plugin")
        ids = []
        for name in names:
            if name not in PLUGINS:
                raise BadArgumentError(f"unknown auth plugin {name!r}; known: {', '.join(PLUGINS)}")
            if given[PLUGINS[name]] is None:
                raise BadArgumentError(f"{name} is configured but has no verifier")
            ids.append(PLUGINS[name])
        #: the accepted plugin ids, AuthType first
        self.plugins: Tuple[int, ...] = tuple(ids)
        self._slurm = slurm if AUTH_SLURM in ids else None
        self._policy = slurm.c_policy if slurm is not None and AUTH_SLURM in ids else None
        self._jwt = jwt if AUTH_JWT in ids else None
        # what the one C call per frame gets: NULL for a plugin not served
        self._policy_c = self._policy if self._policy is not None else _fr.NULL
        self._jwt_c = self._jwt.c_policy if self._jwt is not None else _fr.NULL
        self._munge = munge if AUTH_MUNGE in ids else None
        self.block_null_hash = bool(block_null_hash)
        self.block_zero_hash = bool(block_zero_hash)
        self.hash_plugins = tuple(hash_plugins)
        self._bh = ((BLOCK_NULL_HASH if block_null_hash else 0) | (BLOCK_ZERO_HASH if block_zero_hash else 0)
                    | hash_policy(self.hash_plugins))
        self.length_prefix = bool(length_prefix)
        self._opts, self._lo, self._hi = parse_options(versions, max_frame, length_prefix)
        self._max_frame = max_frame

    @classmethod
    def from_slurm_conf(cls, path: str, *, keyring: Optional[Keyring] = None,
                        verifier_uid: Optional[int] = None,
                        max_frame: int = VERIFY_MAX_FRAME) -> "FrameVerifier":
        """A verifier deciding as the slurmctld of this slurm.conf decides: AuthType and
        AuthAltTypes; auth/slurm keys from the conf's directory (or ``keyring``), checked
        against SlurmUser (ruid), AuthInfo=use_client_ids; auth/jwt from AuthAltParameters
        and StateSaveLocation; auth/munge at AuthInfo's socket=; CommunicationParameters
        block_null_hash / block_zero_hash; HashPlugin. ``verifier_uid`` defaults to
        SlurmUser's uid, the uid slurmctld runs as; ``max_frame`` as in the constructor."""
        from .slurmconf import read_slurm_conf

        conf = read_slurm_conf(path)
        names = (conf.auth_type,) + conf.auth_alt_types
        uid = conf.slurm_user_uid if verifier_uid is None else verifier_uid
        slurm = jwt = munge = None
        if "auth/slurm" in names:
            if keyring is None:
                keyring = Keyring.load(conf_dir=conf.conf_dir, slurm_user_uid=conf.slurm_user_uid)
            slurm = Verifier(keyring, verifier_uid=uid, use_client_ids=conf.use_client_ids)
        if "auth/jwt" in names:
            from .jwt import JWTVerifier
            jwt = JWTVerifier.from_config(conf.get("AuthAltParameters"),
                                          state_save_location=conf.get("StateSaveLocation"),
                                          slurm_user_uid=conf.slurm_user_uid)
        if "auth/munge" in names:
            from .munge import MungeContext
            munge = MungeContext(socket=conf.munge_socket)
        return cls(slurm, jwt=jwt, munge=munge, auth_type=conf.auth_type,
                   auth_alt_types=conf.auth_alt_types, block_null_hash=conf.block_null_hash,
                   block_zero_hash=conf.block_zero_hash, hash_plugins=conf.hash_plugins,
                   max_frame=max_frame)

    @property
    def slurm(self) -> Optional[Verifier]:
        """The auth/slurm verifier (None when auth/slurm is not configured)."""
        return self._slurm

    @property
    def version_range(self) -> Tuple[int, int]:
        """The (oldest, newest) protocol versions accepted."""
        return self._lo, self._hi

    def c_state(self) -> Tuple[Any, Any, int]:
        """(key snapshot, ``sc_policy *``, SA_BH_* flags): what a C consumer of auth/slurm
        frames (the serving core) needs to decide as :meth:`verify` does. Take it again
        after the keyring is reloaded."""
        if self._slurm is None:
            raise BadArgumentError("auth/slurm is not configured in this FrameVerifier")
        return self._slurm.keyring.snapshot(), self._policy, self._bh

    def verify(self, data: Union[RpcFrame, BytesLike], now: Optional[int] = None) -> VerifiedRpc:
        """Verify one frame (raw bytes, or an already parsed :class:`RpcFrame`);
        raise the exception of the first rule it breaks."""
        if now is None:
            when = -1
        elif type(now) is int and now >= 0:
            when = now
        else:
            raise BadArgumentError("now must be a non-negative integer unix time")
        if type(data) is bytes:
            raw: Any = data
            n = len(data)
        elif isinstance(data, RpcFrame):
            return self._dispatch(data, now)
        elif isinstance(data, (bytearray, memoryview)):
            view = memoryview(data).cast("B")
            raw = _c_bytes(view)
            n = len(view)
        else:
            raise BadArgumentTypeError(f"frame must be bytes-like, not {type(data).__name__}")
        try:
            f, fbuf, v = _local_frame.f
        except AttributeError:
            f, fbuf, v = _frame_struct()
        slurm, jwt = self._slurm, self._jwt
        if slurm is None and jwt is None:
            rc = _fr.parse(raw, n, self._opts, f)
            if rc:
                raise frame_error(rc, f, self._lo, self._hi)
            return self._dispatch(_frame_from(data, memoryview(data).cast("B"), f, fbuf), now)
        if n > self._max_frame:
            # over the cap (or a prefix that lies): the parse alone refuses it,
            # before this thread's scratch is touched
            rc = _fr.parse(raw, n, self._opts, f)
            if rc:
                raise frame_error(rc, f, self._lo, self._hi)
        try:
            buf, ptr, cap, small = _local.s
        except AttributeError:
            buf, ptr, cap, small = _scratch(0)
        # one snapshot: the key index refers to it
        snap = slurm.keyring.snapshot() if slurm is not None else None
        keyset = snap.keyset if snap is not None else _NULL
        rc = _verify_frame(raw, n, self._opts, f, keyset, self._policy_c, self._jwt_c, when, self._bh,
                           ptr, cap, v)
        if rc == _E_SCRATCH:
            # the frame parsed and its token is within the policy's max_len (the
            # length is checked before the scratch): size the scratch for that
            # token, never for the frame, and run again
            token_len = int(f.cred_len) - 1
            need = (_scratch_need(token_len) if _fr.auth_plugin(f) == AUTH_SLURM
                    else _aj_scratch_need(token_len))
            buf, ptr, cap, small = _scratch(need)
            rc = _verify_frame(raw, n, self._opts, f, keyset, self._policy_c, self._jwt_c, when,
                               self._bh, ptr, cap, v)
        if not rc:
            if jwt is not None and _fr.auth_plugin(f) == AUTH_JWT:
                return self._jwt_frame(jwt, data, f, fbuf, buf)
            done = _new(VerifiedRpc)
            _set(done, "__dict__", {"credential": _credential(buf, 0, snap),
                                    "frame": _frame_from(data, memoryview(data) if raw is data else
                                                         memoryview(data).cast("B"), f, fbuf)})
            return done
        if jwt is not None and _fr.verdict(v)[0] == _fr.STAGE_TOKEN and _fr.auth_plugin(f) == AUTH_JWT:
            return self._jwt_frame(jwt, data, f, fbuf, buf)     # raises the rule's refusal
        if rc == _fr.E_PLUGIN and _fr.auth_plugin(f) in self.plugins:
            return self._dispatch(_frame_from(data, memoryview(data).cast("B"), f, fbuf), now)
        if _fr.verdict(v)[0] == _fr.STAGE_BODY_HASH:
            # C verified the token before the body hash; its "id", "sbcast" and "net"
            # objects are parsed here, and slurmctld refuses a malformed one in
            # auth_g_verify, before _check_hash: that refusal comes first
            _credential(buf, 0, snap)
        raise self._refusal(rc, f, v)

    @staticmethod
    def _jwt_frame(jwt: "JWTVerifier", data: Union[bytes, bytearray, memoryview], f: Any, fbuf: Any,
                   scratch: bytearray) -> VerifiedRpc:
        """The rest of :meth:`verify` for an auth/jwt frame whose token C checked
        into ``scratch``: the steps :meth:`JWTVerifier.finish` takes (the RS256
        signature, the packed username, the user database), or their refusal."""
        frame = _frame_from(data, memoryview(data) if type(data) is bytes else memoryview(data).cast("B"),
                            f, fbuf)
        token = frame.auth_cred
        assert token is not None                # C refused a NULL token at the auth stage
        done = _new(VerifiedRpc)
        _set(done, "__dict__", {"credential": jwt.finish(memoryview(scratch), token, frame.auth_username),
                                "frame": frame})
        return done

    def _refusal(self, rc: int, f: Any, v: Any) -> Exception:
        """The exception for a frame the fused verifier refused (its verdict in ``v``)."""
        stage, _, claim = _fr.verdict(v)
        if stage == _fr.STAGE_PARSE:
            return frame_error(rc, f, self._lo, self._hi)
        if rc == _fr.E_NULL_CRED:
            return MissingCredentialError(
                f"{_NAMES[_fr.auth_plugin(f)]} section carries a NULL credential", status=rc)
        if stage == _fr.STAGE_TOKEN:
            return credential_failure(rc, claim)
        if stage == _fr.STAGE_BODY_HASH:
            return error_for_status(rc, "body hash")
        if rc == _fr.E_PLUGIN:
            plugin = _fr.auth_plugin(f)
            if len(self.plugins) > 1:
                return UnsupportedAuthPluginError(
                    f"auth plugin {plugin} is not one of "
                    f"{', '.join(_NAMES[p] for p in self.plugins)}", status=rc)
            return UnsupportedAuthPluginError(f"auth plugin {plugin} is not auth/slurm ({AUTH_SLURM})",
                                              status=rc)
        return error_for_status(rc)

    def _dispatch(self, frame: RpcFrame, now: Optional[int]) -> VerifiedRpc:
        """Verify a parsed frame with its plugin's verifier."""
        plugin = frame.auth_plugin
        if plugin not in self.plugins and len(self.plugins) == 1:
            auth_credential(frame, self.plugins[0])       # raises the precise error
        if plugin == AUTH_SLURM and self._slurm is not None:
            cred: Any = self._slurm.verify(auth_credential(frame, AUTH_SLURM), now=now)
            check_body_hash(cred.payload, frame.body, frame.msg_type,
                            block_null_hash=self.block_null_hash,
                            block_zero_hash=self.block_zero_hash, hash_plugins=self.hash_plugins)
        elif plugin == AUTH_JWT and self._jwt is not None:
            cred = self._jwt.verify(auth_credential(frame, AUTH_JWT), username=frame.auth_username,
                                    now=now)
        elif plugin == AUTH_MUNGE and self._munge is not None:
            from .munge import verify_munge_rpc
            cred = verify_munge_rpc(frame, context=self._munge,
                                    block_null_hash=self.block_null_hash,
                                    block_zero_hash=self.block_zero_hash,
                                    hash_plugins=self.hash_plugins).credential
        else:
            auth_credential(frame, self.plugins[0])        # no auth section or a NULL credential
            raise UnsupportedAuthPluginError(
                f"auth plugin {plugin} is not one of "
                f"{', '.join(_NAMES[p] for p in self.plugins)}")
        done = _new(VerifiedRpc)
        _set(done, "__dict__", {"frame": frame, "credential": cred})
        return done


def verify_rpc(frame: Union[RpcFrame, BytesLike], verifier: Verifier, *,
               block_null_hash: bool = False, block_zero_hash: bool = False,
               length_prefix: bool = True, now: Optional[int] = None,
               versions: Iterable[int] = DEFAULT_VERSIONS,
               max_frame: int = VERIFY_MAX_FRAME,
               hash_plugins: Iterable[str] = DEFAULT_HASH_PLUGINS) -> VerifiedRpc:
    """Authenticate one RPC as slurmctld does for auth/slurm (plugin 103).

    ``frame`` is an :class:`RpcFrame` or the raw bytes (parsed with
    ``length_prefix``, ``versions``, ``max_frame``: default 64 MiB,
    :data:`~slurmauth_fast.frame.VERIFY_MAX_FRAME`, Slurm's cap being 1 GiB). The token is verified by
    ``verifier`` (a :class:`~slurmauth_fast.verifier.Verifier`: signature,
    expiry, ruid against the verifier's uid, context "auth" or "sack"), then
    its payload must bind this body and msg_type
    (:func:`~slurmauth_fast.bodyhash.check_body_hash`, with Slurm's
    block_null_hash / block_zero_hash policy and HashPlugin list, default k12
    only). Raw bytes go through one C
    call. The :class:`FrameVerifier` for these options is built once per
    verifier (``verifier.frame_verifier`` for the defaults,
    ``verifier.frame_verifiers`` by options)."""
    if (versions is DEFAULT_VERSIONS and max_frame == VERIFY_MAX_FRAME and length_prefix is True
            and block_null_hash is False and block_zero_hash is False
            and hash_plugins is DEFAULT_HASH_PLUGINS):
        try:
            fv = verifier.frame_verifier
        except AttributeError:
            raise BadArgumentTypeError("verifier must be a slurmauth_fast Verifier") from None
        if fv is None:
            fv = verifier.frame_verifier = FrameVerifier(verifier)
        return fv.verify(frame, now)
    if not isinstance(verifier, Verifier):
        raise BadArgumentTypeError("verifier must be a slurmauth_fast Verifier")
    versions = tuple(versions)
    hash_plugins = tuple(hash_plugins)
    key = (bool(block_null_hash), bool(block_zero_hash), bool(length_prefix), versions, max_frame,
           hash_plugins)
    fv = verifier.frame_verifiers.get(key)
    if fv is None:
        fv = FrameVerifier(verifier, block_null_hash=block_null_hash,
                           block_zero_hash=block_zero_hash, length_prefix=length_prefix,
                           versions=versions, max_frame=max_frame, hash_plugins=hash_plugins)
        verifier.frame_verifiers.put(key, fv)
    return fv.verify(frame, now)

__all__ = ["PLUGINS", "FrameVerifier", "VerifiedRpc", "verify_rpc"]
