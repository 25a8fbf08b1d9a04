"""auth/slurm keys: slurm.key and slurm.jwks, loaded exactly as Slurm loads them.

Slurm (``auth/slurm`` ``init_internal``) looks for ``slurm.jwks`` beside
slurm.conf (env ``SLURM_SACK_JWKS`` overrides the path); when that file exists
it is used INSTEAD of ``slurm.key`` (env ``SLURM_SACK_KEY``), whose raw bytes
are the HMAC key. Both files must not grant "other" any access (fatal) and
should be owned by root or SlurmUser (a warning otherwise).

A jwks is ``{"keys": [...]}``; each key needs ``kid`` (a string, unique,
compared case-sensitively), ``kty`` (``oct``) and ``alg`` (``HS256``), both
compared case-insensitively as Slurm does, and ``k`` (base64 or base64url of
at least 16 bytes). ``use: "default"`` (case-insensitive) marks the signing
key, at most once; without it the first key is the default. ``exp`` (unix
time) retires a key: tokens naming it are refused once it has passed. Other
fields are ignored. Every broken rule is an error naming the file, the key
and the rule (Slurm stops the daemon).

A :class:`Keyring` holds the loaded keys as one immutable state object;
:meth:`Keyring.reload` builds a complete new state and swaps it in with a
single reference assignment, so a verifier sees either the old or the new set,
never a mix, and a key removed by the reload cannot verify anything that
starts after ``reload()`` returns. Key material lives only in C memory
(:class:`~slurmauth_fast.jws.HS256Key`), is wiped when the last reference to
the old state goes, and the bytes read from files are wiped right after use.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import logging
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._core import ffi
from .errors import BadArgumentError, JWKSError, KeyFileError, KeyIdError
from .jsonutil import dumps_compact, loads_object
from .jws import HS256Key
from .keyfile import NO_OTHER_ACCESS, read_key_file, wipe

#: ruid meaning "anyone may verify" (uint32 of -1 on the wire).
SLURM_AUTH_UID_ANY = 4294967295

#: Slurm refuses jwks keys shorter than this many bytes ("lacks sufficient entropy").
MIN_JWKS_KEY_BYTES = 16
#: A slurm.key shorter than this is accepted (Slurm accepts any non-empty
#: slurm.key) but warned about, once per file path.
MIN_SLURM_KEY_BYTES = 16

DEFAULT_CONF_DIR = "/etc/slurm"

_B64_CHARS = re.compile(r"[A-Za-z0-9+/\-_]*={0,2}")
_INT_STRING = re.compile(r"-?[0-9]+")


log = logging.getLogger("slurmauth_fast.keys")
_warned_short: set = set()
_warned_lock = threading.Lock()


def short_key_warning(path: str, size: int) -> Optional[str]:
    """The warning for a slurm.key of ``size`` bytes, or None when it is long enough."""
    if size >= MIN_SLURM_KEY_BYTES:
        return None
    return (f"key file '{path}' holds only {size} bytes (under {MIN_SLURM_KEY_BYTES}): Slurm accepts it, "
            f"but it is easy to guess; make a new one with 'slurmauth-fast keygen'")


def _warn_short_key(path: str, size: int) -> Optional[str]:
    """Log :func:`short_key_warning` once per path (a reload does not repeat it)."""
    msg = short_key_warning(path, size)
    if msg is not None:
        with _warned_lock:
            first = path not in _warned_short
            _warned_short.add(path)
        if first:
            log.warning("%s", msg)
    return msg


@dataclass(frozen=True, eq=False)
class SlurmKey:
    """One loaded key: its kid (None for slurm.key), expiry (None: never) and
    whether it is the signing (default) key. ``repr`` never shows the secret.
    Read-only: the C view of the key set is built from these values."""

    kid: Optional[str]
    exp: Optional[int]
    default: bool
    key: HS256Key = field(repr=False)


class _KeyState:
    """An immutable key set plus the C view of it (``sc_keyset``)."""

    __slots__ = ("keys", "kids", "headers", "by_kid", "default_index", "source", "ks", "_c_keys",
                 "_c_bytes", "warnings", "wref", "__weakref__")

    def __init__(self, keys: List[SlurmKey], by_kid: bool, default_index: int, source: str) -> None:
        self.keys: Tuple[SlurmKey, ...] = tuple(keys)
        self.kids: Tuple[Optional[str], ...] = tuple(k.kid for k in keys)
        self.by_kid = by_kid
        self.default_index = default_index
        self.source = source
        #: What the load found worth a warning (e.g. a short slurm.key).
        self.warnings: Tuple[str, ...] = ()
        #: A weak reference to this state: caches of what it verified hold
        #: this, never the state, so a retired key set is freed (and its keys
        #: wiped) once no verification in flight uses it.
        self.wref = weakref.ref(self)
        #: The JOSE header Slurm (libjwt) writes when signing with each key.
        self.headers: Tuple[bytes, ...] = tuple(
            dumps_compact({"alg": "HS256", "typ": "JWT", **({"kid": k.kid} if by_kid else {})})
            for k in keys)
        c_keys = ffi.new("sc_key[]", len(keys))
        self._c_bytes: List[Any] = []  # keeps the kid and header bytes alive as long as c_keys
        for i, k in enumerate(keys):
            if k.kid is not None:
                kid = k.kid.encode("utf-8")
                c_keys[i].kid = self._keep(kid)
                c_keys[i].kid_len = len(kid)
            hdr = base64.urlsafe_b64encode(self.headers[i]).rstrip(b"=")
            c_keys[i].hdr = self._keep(hdr)
            c_keys[i].hdr_len = len(hdr)
            c_keys[i].key = k.key.cdata
            c_keys[i].exp = k.exp or 0
        self._c_keys = c_keys
        ks = ffi.new("sc_keyset *")
        ks.keys = c_keys
        ks.nkeys = len(keys)
        ks.default_index = default_index
        ks.by_kid = 1 if by_kid else 0
        self.ks = ks

    def _keep(self, data: bytes) -> Any:
        buf = ffi.new("char[]", data)
        self._c_bytes.append(buf)
        return buf


def _hs256(secret: bytearray, what: str) -> HS256Key:
    try:
        return HS256Key(secret)
    except BadArgumentError as e:
        raise KeyFileError(f"{what}: {e}") from None
    finally:
        wipe(secret)


def _decode_k(k: str) -> bytearray:
    """base64 or base64url, padded or not, like Slurm's conversion to base64
    followed by libjwt's decoder. Returns a wipeable bytearray, or raises ValueError."""
    if not _B64_CHARS.fullmatch(k):
        raise ValueError("k is not base64 or base64url")
    body = k.rstrip("=").replace("-", "+").replace("_", "/")
    if len(body) % 4 == 1:
        raise ValueError("k has an impossible base64 length")
    padded = (body + "=" * (-len(body) % 4)).encode("ascii")
    try:
        return bytearray(binascii.a2b_base64(padded))
    except binascii.Error:
        raise ValueError("k is not base64 or base64url") from None


def _key_exp(value: Any, where: str) -> Optional[int]:
    # Slurm converts with data_get_int_converted(): an integer, or a string
    # holding one. Floats, bools, objects are refused.
    if type(value) is int:
        exp = value
    elif isinstance(value, str) and _INT_STRING.fullmatch(value.strip()):
        exp = int(value.strip())
    else:
        raise JWKSError(f"{where}: invalid value for exp (must be an integer unix time)")
    if not -(2 ** 63) <= exp < 2 ** 63:
        raise JWKSError(f"{where}: exp is out of range")
    return exp or None  # Slurm: exp 0 means no expiry


def _parse_jwks(text: Union[str, bytes, bytearray], source: str) -> _KeyState:
    raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    doc = loads_object(raw, JWKSError, f"{source}: jwks")
    if "keys" not in doc:
        raise JWKSError(f"{source}: jwks file invalid: no \"keys\" list")
    entries = doc["keys"]
    if not isinstance(entries, list):
        raise JWKSError(f"{source}: jwks file invalid: \"keys\" is not a list")
    if not entries:
        raise JWKSError(f"{source}: jwks file invalid: \"keys\" is empty")
    keys: List[SlurmKey] = []
    seen: Dict[str, int] = {}
    default_index: Optional[int] = None
    try:
        for i, entry in enumerate(entries):
            where = f"{source}: key #{i}"
            if not isinstance(entry, dict):
                raise JWKSError(f"{where}: not a JSON object")
            kid = entry.get("kid")
            if not isinstance(kid, str):
                raise JWKSError(f"{where}: failed to load kid field (required string)")
            where = f"{source}: key #{i} (kid {kid!r})"
            try:
                kid.encode("utf-8")
            except UnicodeEncodeError:
                raise JWKSError(f"{where}: kid is not valid UTF-8") from None
            if "\x00" in kid:  # Slurm and libjwt hold the kid as a C string
                raise JWKSError(f"{where}: kid contains a NUL character")
            if kid in seen:
                raise JWKSError(f"{where}: kid fields must be unique (same as key #{seen[kid]})")
            seen[kid] = i
            kty = entry.get("kty")
            if not isinstance(kty, str):
                raise JWKSError(f"{where}: failed to load kty field (required string)")
            if kty.lower() != "oct":
                raise JWKSError(f"{where}: kty field must be oct")
            alg = entry.get("alg")
            if not isinstance(alg, str):
                raise JWKSError(f"{where}: failed to load alg field (required string)")
            if alg.upper() != "HS256":
                raise JWKSError(f"{where}: alg field must be HS256")
            k = entry.get("k")
            if not isinstance(k, str):
                raise JWKSError(f"{where}: failed to load key field k (required string)")
            try:
                secret = _decode_k(k)
            except ValueError as e:
                raise JWKSError(f"{where}: {e}") from None
            if len(secret) < MIN_JWKS_KEY_BYTES:
                wipe(secret)
                raise JWKSError(f"{where}: key lacks sufficient entropy "
                                f"(k decodes to fewer than {MIN_JWKS_KEY_BYTES} bytes)")
            use = entry.get("use")
            is_default = isinstance(use, str) and use.lower() == "default"
            if is_default:
                if default_index is not None:
                    wipe(secret)
                    raise JWKSError(f"{where}: multiple default keys defined "
                                    f"(key #{default_index} is already \"use\": \"default\")")
                default_index = i
            exp = None
            if "exp" in entry:
                try:
                    exp = _key_exp(entry["exp"], where)
                except JWKSError:
                    wipe(secret)
                    raise
            keys.append(SlurmKey(kid=kid, exp=exp, default=is_default, key=_hs256(secret, where)))
    except BaseException:
        for key in keys:
            key.key.close()
        raise
    if default_index is None:  # no "use": "default": the first key signs
        default_index = 0
        keys[0] = dataclasses.replace(keys[0], default=True)
    return _KeyState(keys, True, default_index, source)


def _conf_dir(env: Mapping[str, str]) -> str:
    conf = env.get("SLURM_CONF")
    return os.path.dirname(conf) if conf else DEFAULT_CONF_DIR


class Keyring:
    """The auth/slurm keys a daemon holds: one default (signing) key, and with
    slurm.jwks any number of verification keys selected by kid."""

    def __init__(self, state: "_KeyState", *, key_path: Optional[str] = None,
                 jwks_path: Optional[str] = None, slurm_user_uid: Optional[int] = None) -> None:
        self._state = state
        self._key_path = key_path
        self._jwks_path = jwks_path
        self._slurm_user_uid = slurm_user_uid
        self._reload_lock = threading.Lock()

    # ---- construction ----------------------------------------------------
    @classmethod
    def from_key_bytes(cls, key: Union[bytes, bytearray, memoryview]) -> "Keyring":
        """slurm.key semantics: the bytes are the HMAC key; no kid in headers
        (a kid in a received header is ignored, as Slurm ignores it)."""
        secret = bytearray(key)
        k = SlurmKey(kid=None, exp=None, default=True, key=_hs256(secret, "slurm.key"))
        return cls(_KeyState([k], False, 0, "<key bytes>"))

    @classmethod
    def from_jwks(cls, text_or_bytes: Union[str, bytes, bytearray], source: str = "<jwks>") -> "Keyring":
        """Parse a slurm.jwks document (every rule of Slurm's loader)."""
        return cls(_parse_jwks(text_or_bytes, source))

    @classmethod
    def load(cls, *, key_path: Optional[str] = None, jwks_path: Optional[str] = None,
             conf_dir: Optional[str] = None, slurm_user_uid: Optional[int] = None,
             env: Optional[Mapping[str, str]] = None) -> "Keyring":
        """Load like Slurm: the jwks when that file exists, else slurm.key.

        Paths: an explicit ``key_path``/``jwks_path`` argument first, then env
        ``SLURM_SACK_KEY``/``SLURM_SACK_JWKS``, then ``slurm.key``/``slurm.jwks``
        in ``conf_dir`` (default: the directory of env ``SLURM_CONF``, else
        /etc/slurm). ``slurm_user_uid`` enables the owner warning. The paths
        are remembered for :meth:`reload`."""
        env = os.environ if env is None else env
        base = conf_dir if conf_dir is not None else _conf_dir(env)
        kp = key_path or env.get("SLURM_SACK_KEY") or os.path.join(base, "slurm.key")
        jp = jwks_path or env.get("SLURM_SACK_JWKS") or os.path.join(base, "slurm.jwks")
        state = cls._read(kp, jp, slurm_user_uid)
        return cls(state, key_path=kp, jwks_path=jp, slurm_user_uid=slurm_user_uid)

    @staticmethod
    def _read(key_path: str, jwks_path: str, slurm_user_uid: Optional[int]) -> _KeyState:
        if os.path.exists(jwks_path):
            data = read_key_file(jwks_path, bad_mode=NO_OTHER_ACCESS, slurm_user_uid=slurm_user_uid)
            try:
                return _parse_jwks(data, jwks_path)
            finally:
                wipe(data)
        data = read_key_file(key_path, bad_mode=NO_OTHER_ACCESS, slurm_user_uid=slurm_user_uid)
        if not data:
            raise KeyFileError(f"key file '{key_path}' is empty")
        short = _warn_short_key(key_path, len(data))
        key = SlurmKey(kid=None, exp=None, default=True, key=_hs256(data, f"key file '{key_path}'"))
        state = _KeyState([key], False, 0, key_path)
        if short is not None:
            state.warnings = (short,)
        return state

    def reload(self) -> None:
        """Re-read the files (``scontrol reconfigure``) and swap the new key set
        in atomically. On any error the old keys stay in force and the error is
        raised."""
        if self._key_path is None or self._jwks_path is None:
            raise BadArgumentError("this keyring was not loaded from files; nothing to reload")
        with self._reload_lock:
            self._state = self._read(self._key_path, self._jwks_path, self._slurm_user_uid)

    def replace_with(self, other: "Keyring") -> None:
        """Swap in the keys of ``other`` atomically (for keys not kept in files)."""
        self._state = other._state

    # ---- access ----------------------------------------------------------
    @property
    def keys(self) -> Tuple[SlurmKey, ...]:
        return self._state.keys

    @property
    def is_jwks(self) -> bool:
        """True when keys came from a jwks (kid selects the key)."""
        return self._state.by_kid

    @property
    def warnings(self) -> Tuple[str, ...]:
        """Warnings about the loaded keys (a slurm.key under 16 bytes), for display."""
        return self._state.warnings

    @property
    def source(self) -> str:
        """Where the current keys came from (a path, or "<jwks>"/"<key bytes>")."""
        return self._state.source

    def default_key(self) -> SlurmKey:
        """The signing key: the "use": "default" key, else the first one."""
        st = self._state
        return st.keys[st.default_index]

    def lookup(self, kid: Optional[str]) -> SlurmKey:
        """The key that verifies a token whose header has this kid: the default
        key for no kid (or for any kid with slurm.key, as Slurm ignores it
        there); with a jwks an unknown kid raises :class:`KeyIdError`."""
        st = self._state
        if kid is None or not st.by_kid:
            return st.keys[st.default_index]
        for k in st.keys:
            if k.kid == kid:
                return k
        raise KeyIdError(f"no key with kid {kid[:64]!r} in {st.source}")

    def __repr__(self) -> str:
        st = self._state
        kids = [k.kid for k in st.keys]
        return f"<Keyring {st.source!r} kids={kids!r} default={st.default_index}, secrets not shown>"
