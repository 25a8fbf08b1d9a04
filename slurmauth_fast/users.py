"""User name -> (uid, gid) as Slurm resolves it, and a bounded cache of the answers.

auth/jwt names its user by name; slurmctld turns the name into a uid with
``uid_from_string`` and the gid with ``gid_from_uid``: the name in the user
database, else a decimal uid that has an entry. :func:`lookup_user` does
that with one ``getpwnam`` (and maybe a ``getpwuid``). :class:`UserCache`
keeps its answers, known and unknown users alike, for ``ttl`` seconds, so a
verifier does not ask the user database (NSS: files, sssd, LDAP) once per token.
"""
from __future__ import annotations

import pwd
import time
from typing import Callable, Tuple

from ._bounded import BoundedCache
from .errors import UnknownUserError

#: Largest uid value (uint32); a decimal name at or above it is no uid.
MAX_ID = 4294967295

#: How long cached answers are used (seconds) when not told otherwise.
DEFAULT_TTL = 60.0
#: How many user names the cache holds when not told otherwise.
DEFAULT_SIZE = 4096


def lookup_user(name: str) -> Tuple[int, int]:
    """uid/gid of a user name as Slurm's uid_from_string + gid_from_uid do:
    the name in the user database, else a decimal uid that has an entry.
    Raises :class:`UnknownUserError` for neither."""
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    except ValueError:          # a name with a NUL byte: no user has it
        raise UnknownUserError(f"user {name[:64]!r} is not in the local user database") from None
    if name.isascii() and name.isdigit() and int(name) < MAX_ID:
        try:
            pw = pwd.getpwuid(int(name))
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
    raise UnknownUserError(f"user {name[:64]!r} is not in the local user database")


# A cached answer: (expires at, uid, gid), uid -1 for an unknown user.
_Entry = Tuple[float, int, int]


class UserCache:
    """:func:`lookup_user` with its answers kept for ``ttl`` seconds.

    At most ``maxsize`` names are held (:class:`~slurmauth_fast._bounded.BoundedCache`:
    a full cache stores no new name, so a flood of names cannot push out the
    ones in use; those are looked up each time instead). Expired entries are
    replaced when their name is looked up again, and dropped in one sweep when
    the cache is full, at most once per ``ttl``. ``clock`` (seconds, monotonic)
    and ``resolve`` are injectable for tests.
    """

    __slots__ = ("ttl", "entries", "clock", "_resolve", "_next_sweep")

    def __init__(self, ttl: float = DEFAULT_TTL, maxsize: int = DEFAULT_SIZE, *,
                 clock: Callable[[], float] = time.monotonic,
                 resolve: Callable[[str], Tuple[int, int]] = lookup_user) -> None:
        if ttl < 0 or maxsize < 0:
            raise ValueError("ttl and maxsize must not be negative")
        self.ttl = ttl
        #: name -> (expires at, uid, gid), uid -1 for an unknown user. Read-only
        #: for others (JWTVerifier reads hits from it directly: a hit is live
        #: while its expiry is above ``clock()``).
        self.entries: BoundedCache[str, _Entry] = BoundedCache(maxsize)
        self.clock = clock
        self._resolve = resolve
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"<UserCache {len(self.entries)}/{self.entries.maxsize} names, ttl {self.ttl}s>"

    def lookup(self, name: str) -> Tuple[int, int]:
        """(uid, gid) of ``name``; :class:`UnknownUserError` for an unknown user."""
        hit = self.entry(name)
        if hit[1] < 0:
            raise UnknownUserError(f"user {name[:64]!r} is not in the local user database")
        return hit[1], hit[2]

    def entry(self, name: str) -> Tuple[float, int, int]:
        """The live answer for ``name``: (expires at, uid, gid), uid -1 for an
        unknown user. While it is the object ``entries`` holds for the name
        and ``clock()`` is below its expiry, it is the current answer (what a
        caller that kept it may check instead of asking again)."""
        now = self.clock()
        hit = self.entries.get(name)
        if hit is None or hit[0] <= now:
            hit = self._fetch(name, now)
        return hit

    def _fetch(self, name: str, now: float) -> _Entry:
        try:
            uid, gid = self._resolve(name)
        except UnknownUserError:
            uid, gid = -1, -1
        entry = (now + self.ttl, uid, gid)
        if not self.entries.put(name, entry) and now >= self._next_sweep:
            self._sweep(now)
            self.entries.put(name, entry)
        return entry

    def _sweep(self, now: float) -> None:
        """Drop every expired entry (the cache is full); next sweep in ``ttl`` at the earliest."""
        for key, entry in list(self.entries.items()):    # a copy: other threads may add meanwhile
            if entry[0] <= now:
                self.entries.pop(key, None)
        self._next_sweep = now + self.ttl

    def clear(self) -> None:
        """Forget every answer (e.g. after the user database changed)."""
        self.entries.clear()


__all__ = ["DEFAULT_SIZE", "DEFAULT_TTL", "MAX_ID", "UserCache", "lookup_user"]
