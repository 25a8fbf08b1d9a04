"""Key administration: new slurm.key files and safe slurm.jwks rotation.

Slurm's documentation creates ``slurm.key`` from 1024 random bytes
(``dd if=/dev/random of=/etc/slurm/slurm.key bs=1024 count=1``), owned by
SlurmUser with mode 0600. ``slurm.jwks`` (Slurm >= 24.05) holds several keys so
that a key can be rotated with ``scontrol reconfigure`` instead of a restart:
credentials name their key by ``kid``, the key marked ``"use": "default"``
signs, the others still verify until their ``exp`` passes or they are removed.

The safe rotation, which :func:`rotate` and :func:`retire` implement:

1. ``rotate``: add a new key and make it the default; the old default stays
   for verification (optionally with an ``exp`` grace deadline). Distribute the
   file everywhere, ``scontrol reconfigure``.
2. Once no credential signed by the old key can still be alive (credentials
   live ``AuthInfo ttl``, 60 s by default; launch credentials as long as a job
   step starts), ``retire`` the old kid, distribute, reconfigure again.

Every file is written atomically (a private temporary file in the same
directory, fsync, rename) with mode 0600, so a reader (slurmctld reloading)
sees the old file or the new one, never a torn one. A JWKS document is
checked against Slurm's own load rules (via :mod:`slurmauth_fast.keys` when
available) before it is written, so this module never writes a file Slurm
would refuse.
"""
from __future__ import annotations

import base64
import grp
import json
import os
import pwd
import secrets
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import BadArgumentError, JWKSError, KeyFileError
from .jsonutil import dumps_compact, loads_object
from .keyfile import read_key_file, wipe
from .keys import MIN_JWKS_KEY_BYTES, Keyring, _decode_k

#: Slurm's documented slurm.key size (dd ... bs=1024 count=1).
DEFAULT_KEY_BYTES = 1024
#: Slurm refuses slurm.jwks keys shorter than this (after decoding "k").
MIN_KEY_BYTES = MIN_JWKS_KEY_BYTES
#: Largest key this tool generates.
MAX_KEY_BYTES = 64 * 1024
KEY_FILE_MODE = 0o600


# --- owner ----------------------------------------------------------------

def parse_owner(spec: str) -> Tuple[int, int]:
    """``USER[:GROUP]`` (names or numbers) -> (uid, gid); GROUP defaults to the
    user's primary group. Raises :class:`BadArgumentError` for unknown names."""
    user, _, group = spec.partition(":")
    if not user:
        raise BadArgumentError(f"owner {spec!r}: no user given")
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    except KeyError:
        if not user.isdigit():
            raise BadArgumentError(f"owner {spec!r}: no such user {user!r}") from None
        uid, gid = int(user), -1
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            try:
                gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise BadArgumentError(f"owner {spec!r}: no such group {group!r}") from None
    if gid < 0:
        raise BadArgumentError(f"owner {spec!r}: uid {uid} has no passwd entry; give the group too")
    return uid, gid


# --- atomic private files -------------------------------------------------

def write_private_file(path: str, data: Union[bytes, bytearray], *, overwrite: bool = False,
                       owner: Optional[Tuple[int, int]] = None) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600 (and ``owner`` when given).

    The bytes go to a new temporary file in the same directory (created 0600,
    so they are never readable by others, whatever the umask), which is
    fsynced, chowned, then renamed over ``path`` (``overwrite``) or hard-linked
    to ``path`` (otherwise: fails if ``path`` exists, with no window in which
    an existing file could be clobbered). A replaced file keeps its owner and
    group unless ``owner`` says otherwise. Raises :class:`KeyFileError`."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not overwrite and os.path.lexists(path):
        raise KeyFileError(f"'{path}' exists; refusing to overwrite it (use --force to replace it)")
    if owner is None and overwrite:
        # A replaced key file keeps its owner: a slurm.jwks that slurmctld (SlurmUser)
        # can read must not turn into a root-only file because root edited it.
        try:
            st = os.stat(path)
        except FileNotFoundError:
            pass
        else:
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                owner = (st.st_uid, st.st_gid)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), KEY_FILE_MODE)
    except OSError as e:
        raise KeyFileError(f"cannot create a file in '{directory}': {e.strerror}") from None
    try:
        try:
            os.fchmod(fd, KEY_FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if owner is not None:
                try:
                    os.fchown(fd, owner[0], owner[1])
                except PermissionError:
                    raise KeyFileError(f"cannot give '{path}' to uid {owner[0]} gid {owner[1]}: "
                                       "only root may change a file's owner") from None
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except FileExistsError:
        _unlink_quietly(tmp)
        raise KeyFileError(f"'{path}' exists; refusing to overwrite it (use --force to replace it)") from None
    except KeyFileError:
        _unlink_quietly(tmp)
        raise
    except OSError as e:
        _unlink_quietly(tmp)
        raise KeyFileError(f"cannot write '{path}': {e.strerror}") from None
    _fsync_dir(directory)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- slurm.key --------------------------------------------------------------

def generate_key(nbytes: int = DEFAULT_KEY_BYTES) -> bytearray:
    """``nbytes`` from the OS CSPRNG (the same source as /dev/random)."""
    if not MIN_KEY_BYTES <= nbytes <= MAX_KEY_BYTES:
        raise BadArgumentError(f"key size must be {MIN_KEY_BYTES}..{MAX_KEY_BYTES} bytes, not {nbytes}")
    return bytearray(secrets.token_bytes(nbytes))


def write_slurm_key(path: str, *, nbytes: int = DEFAULT_KEY_BYTES, overwrite: bool = False,
                    owner: Optional[Tuple[int, int]] = None) -> int:
    """Create a new slurm.key of ``nbytes`` random bytes; returns the size written."""
    key = generate_key(nbytes)
    try:
        write_private_file(path, key, overwrite=overwrite, owner=owner)
    finally:
        wipe(key)
    return nbytes


# --- slurm.jwks ---------------------------------------------------------------

@dataclass(frozen=True)
class JWKSKeyInfo:
    """What ``jwks list`` shows of one key: never the secret."""

    kid: str
    default: bool          # the key Slurm signs with (explicit "use":"default" or the first key)
    exp: Optional[int]
    size: int              # decoded key length in bytes
    expired: bool


def _default_path(var: str, name: str, env: Optional[Dict[str, str]]) -> str:
    env = dict(os.environ) if env is None else env
    if env.get(var):
        return env[var]
    conf = env.get("SLURM_CONF")
    return os.path.join(os.path.dirname(conf) if conf else "/etc/slurm", name)


def default_jwks_path(env: Optional[Dict[str, str]] = None) -> str:
    """Where Slurm looks: $SLURM_SACK_JWKS, else slurm.jwks beside slurm.conf
    ($SLURM_CONF's directory, default /etc/slurm)."""
    return _default_path("SLURM_SACK_JWKS", "slurm.jwks", env)


def default_key_path(env: Optional[Dict[str, str]] = None) -> str:
    """Where Slurm looks: $SLURM_SACK_KEY, else slurm.key beside slurm.conf."""
    return _default_path("SLURM_SACK_KEY", "slurm.key", env)


def _b64url(raw: Union[bytes, bytearray]) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _k_size(k: Any) -> int:
    """Decoded length of a "k" value (0 when it does not decode), read the way Slurm reads it."""
    if not isinstance(k, str):
        return 0
    try:
        raw = _decode_k(k)
    except ValueError:
        return 0
    n = len(raw)
    wipe(raw)
    return n


def new_key_entry(kid: str, *, nbytes: int = DEFAULT_KEY_BYTES, exp: Optional[int] = None,
                  default: bool = False) -> Dict[str, Any]:
    """A JWKS key object as Slurm documents it: alg HS256, kty oct, kid, k (base64url)."""
    if not isinstance(kid, str) or not kid:
        raise BadArgumentError("a key id (kid) must be a non-empty string")
    key = generate_key(nbytes)
    try:
        entry: Dict[str, Any] = {"alg": "HS256", "kty": "oct", "kid": kid, "k": _b64url(key)}
    finally:
        wipe(key)
    if default:
        entry["use"] = "default"
    if exp is not None:
        entry["exp"] = int(exp)
    return entry


def default_kid(now: Optional[float] = None) -> str:
    """A fresh, sortable key id: UTC creation time plus 4 random hex digits."""
    t = time.gmtime(time.time() if now is None else now)
    return time.strftime("%Y%m%dT%H%M%SZ", t) + "-" + secrets.token_hex(2)


def _keys(doc: Dict[str, Any]) -> List[Dict[str, Any]]:
    keys = doc.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise JWKSError('slurm.jwks must be {"keys": [ {...}, ... ]}')
    return keys


def _default_index(keys: List[Dict[str, Any]]) -> int:
    for i, k in enumerate(keys):
        if k.get("use") == "default":
            return i
    return 0


def validate_jwks(doc: Dict[str, Any], source: str = "<jwks>") -> None:
    """Check a document against Slurm's load rules (raises :class:`JWKSError`).

    Uses :meth:`slurmauth_fast.keys.Keyring.from_jwks`, the same loader the
    verifier uses, so what this module writes is what a verifier accepts."""
    Keyring.from_jwks(dumps_compact(doc), source=source)


def load_jwks(path: str) -> Dict[str, Any]:
    """Read (permission-checked like Slurm) and strictly parse a slurm.jwks."""
    raw = read_key_file(path)
    try:
        doc = loads_object(bytes(raw), JWKSError, f"'{path}'")
    finally:
        wipe(raw)
    _keys(doc)
    return doc


def save_jwks(path: str, doc: Dict[str, Any], *, overwrite: bool = True,
              owner: Optional[Tuple[int, int]] = None) -> None:
    """Validate, then write atomically with mode 0600 (pretty-printed, one key per block)."""
    validate_jwks(doc, source=path)
    text = json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
    write_private_file(path, text.encode("ascii"), overwrite=overwrite, owner=owner)


def list_keys(doc: Dict[str, Any], *, now: Optional[int] = None) -> List[JWKSKeyInfo]:
    keys = _keys(doc)
    now = int(time.time()) if now is None else now
    d = _default_index(keys)
    out = []
    for i, k in enumerate(keys):
        exp = k.get("exp") if isinstance(k.get("exp"), int) else None
        out.append(JWKSKeyInfo(kid=str(k.get("kid", "")), default=i == d, exp=exp,
                               size=_k_size(k.get("k")), expired=exp is not None and exp < now))
    return out


def new_jwks(kid: str, *, nbytes: int = DEFAULT_KEY_BYTES, exp: Optional[int] = None) -> Dict[str, Any]:
    """A one-key document, that key marked default."""
    return {"keys": [new_key_entry(kid, nbytes=nbytes, exp=exp, default=True)]}


def add_key(doc: Dict[str, Any], kid: str, *, nbytes: int = DEFAULT_KEY_BYTES, exp: Optional[int] = None,
            make_default: bool = False) -> Dict[str, Any]:
    """A copy of ``doc`` with a new key appended (not the default unless asked)."""
    keys = [dict(k) for k in _keys(doc)]
    if any(k.get("kid") == kid for k in keys):
        raise BadArgumentError(f"kid {kid!r} is already in the key set")
    if make_default:
        for k in keys:
            if k.get("use") == "default":
                del k["use"]
    elif not any(k.get("use") == "default" for k in keys) and keys:
        # The first key is the implicit default; appending keeps it so, but say it explicitly.
        keys[0]["use"] = "default"
    entry = new_key_entry(kid, nbytes=nbytes, exp=exp, default=make_default)
    return dict(doc, keys=keys + [entry])


def rotate(doc: Dict[str, Any], kid: str, *, nbytes: int = DEFAULT_KEY_BYTES,
           old_exp: Optional[int] = None) -> Tuple[Dict[str, Any], str]:
    """Add a new default key; the old default stays for verification. With
    ``old_exp`` the old default gets that ``exp`` (a grace deadline after which
    Slurm rejects what it signed; an earlier exp it already has is kept). Returns the new document and the old default's kid."""
    keys = _keys(doc)
    if not keys:
        raise JWKSError("the key set is empty; use 'jwks new'")
    old = keys[_default_index(keys)]
    new = add_key(doc, kid, nbytes=nbytes, make_default=True)
    if old_exp is not None:
        for k in new["keys"]:
            if k.get("kid") == old.get("kid"):
                # never extend a deadline the key already has
                cur = k.get("exp")
                k["exp"] = int(old_exp) if not isinstance(cur, int) else min(cur, int(old_exp))
    return new, str(old.get("kid"))


def retire(doc: Dict[str, Any], kid: str) -> Dict[str, Any]:
    """A copy of ``doc`` without ``kid``; the default key cannot be retired."""
    keys = _keys(doc)
    idx = [i for i, k in enumerate(keys) if k.get("kid") == kid]
    if not idx:
        raise BadArgumentError(f"no key with kid {kid!r} in the key set")
    if idx[0] == _default_index(keys):
        raise BadArgumentError(f"kid {kid!r} is the default (signing) key; rotate to a new default first")
    # An implicit default is the first key, which is not idx[0]: it stays first.
    return dict(doc, keys=[dict(k) for i, k in enumerate(keys) if i != idx[0]])
