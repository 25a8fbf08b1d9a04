"""The slurm.conf settings behind slurmctld's authentication decisions.

:func:`read_slurm_conf` parses a slurm.conf the way Slurm's parser reads it where that
matters here: ``#`` starts a comment (``\\#`` is a literal ``#``), a line ending in ``\\``
continues on the next, a line holds one or more ``Key=Value`` pairs separated by blanks
(a value may be double-quoted), keys are case-insensitive, a later value of a key replaces an
earlier one, and ``Include PATH`` (a glob, relative to the file's directory) reads other
files in place. Record lines (NodeName=, PartitionName=, ...) are kept apart and not needed
here.

:class:`SlurmConf` turns the settings into what verification and rate limiting use, with
Slurm's own defaults and Slurm's own way of reading each option string (substring matches
where Slurm uses ``xstrcasestr``/``xstrstr``, ``conf_get_opt_str`` for ``key=value``
options).
"""
from __future__ import annotations

import glob
import os
import pwd
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Mapping, Optional, Tuple

from .errors import SlurmAuthError


class SlurmConfError(SlurmAuthError, ValueError):
    """slurm.conf cannot be read, or a setting has a value Slurm would refuse."""

#: Keys whose lines are records (several per file), not settings.
RECORD_KEYS = frozenset({"nodename", "partitionname", "nodeset", "downnodes", "frontendname"})
#: Nested Include depth Slurm allows.
MAX_INCLUDE_DEPTH = 20
#: A slurm.conf larger than this is refused (Slurm's own files are a few KiB).
MAX_CONF_BYTES = 16 << 20

#: Hash plugin name -> the type byte a credential payload starts with.
HASH_TYPES = {"k12": 2, "sha3": 4}
#: HashPlugin's default (DEFAULT_HASH_PLUGIN); k12 is always loaded on top of the list.
DEFAULT_HASH_PLUGIN = "hash/k12"


def _logical_lines(text: str) -> List[str]:
    """Lines with comments removed and ``\\`` continuations joined."""
    out: List[str] = []
    pending = ""
    for line in text.splitlines():
        stripped, i = [], 0
        while i < len(line):
            ch = line[i]
            if ch == "\\" and i + 1 < len(line) and line[i + 1] == "#":
                stripped.append("#")
                i += 2
                continue
            if ch == "#":
                break
            stripped.append(ch)
            i += 1
        body = "".join(stripped).rstrip()
        if body.endswith("\\"):
            pending += body[:-1]
            continue
        out.append(pending + body)
        pending = ""
    if pending:
        out.append(pending)
    return out


def _pairs(line: str, where: str) -> List[Tuple[str, str]]:
    """``Key=Value`` pairs of one line; values may be double-quoted."""
    pairs: List[Tuple[str, str]] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and line[i] not in "= \t":
            i += 1
        key = line[start:i]
        if i >= n or line[i] != "=":
            raise SlurmConfError(f"{where}: '{key}' is not of the form Key=Value")
        i += 1
        if i < n and line[i] == '"':
            end = line.find('"', i + 1)
            if end < 0:
                raise SlurmConfError(f"{where}: unterminated quote after '{key}='")
            value = line[i + 1:end]
            i = end + 1
        else:
            start = i
            while i < n and line[i] not in " \t":
                i += 1
            value = line[start:i]
        pairs.append((key, value))
    return pairs


@dataclass
class _Parsed:
    settings: Dict[str, str] = field(default_factory=dict)
    records: List[Dict[str, str]] = field(default_factory=list)


def _read_into(path: str, parsed: _Parsed, depth: int) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise SlurmConfError(f"{path}: Include nested more than {MAX_INCLUDE_DEPTH} deep")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONF_BYTES + 1)
    except OSError as e:
        raise SlurmConfError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > MAX_CONF_BYTES:
        raise SlurmConfError(f"{path} is larger than {MAX_CONF_BYTES} bytes")
    text = data.decode("utf-8", errors="replace")
    base = os.path.dirname(os.path.abspath(path))
    for number, line in enumerate(_logical_lines(text), 1):
        where = f"{path}:{number}"
        words = line.split(None, 1)
        if not words:
            continue
        if words[0].lower() == "include":
            if len(words) < 2:
                raise SlurmConfError(f"{where}: Include without a file")
            pattern = words[1].strip()
            if not os.path.isabs(pattern):
                pattern = os.path.join(base, pattern)
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise SlurmConfError(f"{where}: Include {words[1].strip()} matches no file")
            for included in matches:
                _read_into(included, parsed, depth + 1)
            continue
        pairs = _pairs(line, where)
        if pairs and pairs[0][0].lower() in RECORD_KEYS:
            parsed.records.append({k.lower(): v for k, v in pairs})
            continue
        for key, value in pairs:
            parsed.settings[key.lower()] = value


def read_slurm_conf(path: str) -> "SlurmConf":
    """Parse ``path`` (and what it includes)."""
    parsed = _Parsed()
    _read_into(path, parsed, 0)
    return SlurmConf(parsed.settings, tuple(parsed.records), os.path.abspath(path))


def conf_get_opt_str(opts: Optional[str], arg: str) -> Optional[str]:
    """Slurm's ``conf_get_opt_str``: the value after ``arg`` (e.g. ``"rl_bucket_size="``)
    in the first comma-separated element that starts with it; None when absent or empty."""
    if not opts:
        return None
    for tok in opts.split(","):
        if tok.startswith(arg):
            return tok[len(arg):] or None
    return None


def _uid_of(user: str) -> int:
    if user.isdigit():
        return int(user)
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise SlurmConfError(f"SlurmUser {user!r} is not a known user") from None


@dataclass(frozen=True)
class SlurmConf:
    """Parsed slurm.conf settings (keys lower-cased) and what slurmctld derives from them."""

    settings: Mapping[str, str]
    records: Tuple[Mapping[str, str], ...] = ()
    path: Optional[str] = None

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        return self.settings.get(key.lower(), default)

    @property
    def conf_dir(self) -> Optional[str]:
        return os.path.dirname(self.path) if self.path else None

    @property
    def cluster_name(self) -> Optional[str]:
        return self.get("ClusterName")

    @property
    def auth_type(self) -> str:
        return self.get("AuthType") or "auth/munge"

    @property
    def auth_alt_types(self) -> Tuple[str, ...]:
        return tuple(t for t in (self.get("AuthAltTypes") or "").split(",") if t)

    @property
    def auth_info(self) -> str:
        return self.get("AuthInfo") or ""

    @property
    def use_client_ids(self) -> bool:
        """auth/slurm reads the credential's "id" object only with this (``xstrstr``)."""
        return "use_client_ids" in self.auth_info

    @property
    def munge_socket(self) -> Optional[str]:
        """munged's socket from AuthInfo=socket=PATH (None: libmunge's default)."""
        return conf_get_opt_str(self.auth_info, "socket=")

    @property
    def block_null_hash(self) -> bool:
        return "block_null_hash" in (self.get("CommunicationParameters") or "").lower()

    @property
    def block_zero_hash(self) -> bool:
        return "block_zero_hash" in (self.get("CommunicationParameters") or "").lower()

    @property
    def hash_plugins(self) -> Tuple[str, ...]:
        """The hash plugins slurmctld loads: HashPlugin's list ("hash/X" or "X"), with k12
        added when absent (Slurm always loads it)."""
        listed = self.get("HashPlugin") or DEFAULT_HASH_PLUGIN
        if "k12" not in listed:
            listed += ",k12"
        names = []
        for name in listed.split(","):
            name = name[5:] if name.startswith("hash/") else name
            if name not in HASH_TYPES:
                raise SlurmConfError(f"HashPlugin: unknown hash plugin {name!r} "
                                     f"(known: {', '.join(sorted(HASH_TYPES))})")
            if name not in names:
                names.append(name)
        return tuple(names)

    @property
    def hash_types(self) -> FrozenSet[int]:
        """The payload type bytes a credential may carry: the loaded plugins' ids."""
        return frozenset(HASH_TYPES[n] for n in self.hash_plugins)

    @property
    def slurm_user_uid(self) -> int:
        return _uid_of(self.get("SlurmUser") or "root")

    @property
    def slurmctld_parameters(self) -> str:
        return self.get("SlurmctldParameters") or ""

    @property
    def slurmctld_port(self) -> int:
        text = self.get("SlurmctldPort") or "6817"
        first = text.split("-", 1)[0]
        if not first.isdigit() or not 0 < int(first) < 65536:
            raise SlurmConfError(f"SlurmctldPort {text!r} is not a port")
        return int(first)


__all__ = ["DEFAULT_HASH_PLUGIN", "HASH_TYPES", "SlurmConf", "SlurmConfError", "conf_get_opt_str",
           "read_slurm_conf"]
