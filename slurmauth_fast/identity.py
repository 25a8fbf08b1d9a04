"""The "id" identity object that auth/slurm credentials carry.

With ``AuthInfo=use_client_ids`` (and always in launch credentials) Slurm puts
the requester's passwd entry and group list into the credential so the
receiver does not need the user in its own user database. The object is::

    {"name": ..., "gecos": ..., "dir": ..., "shell": ...,
     "groups": {"<group name>": gid, ...}}        # when group names are known
    or "gids": [gid, ...]                          # when only numbers are known

Slurm builds it from ``getpwuid`` and the user's group list (``getgrouplist``
with the primary group first), naming each group with ``getgrgid`` and
falling back to the decimal gid when a group has no name. When the user has
no groups at all neither "groups" nor "gids" is written.
"""
from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from .errors import IdentityError

UINT32_MAX = 4294967295

#: Upper bound on groups accepted in a received identity (a guard against
#: memory abuse; Linux allows 65536 supplementary groups).
MAX_GROUPS = 65536 + 1


@dataclass(frozen=True)
class Identity:
    """A user's passwd entry and groups as carried in a credential's "id".

    Exactly one of ``groups`` (group name -> gid, in Slurm's order) and
    ``gids`` is set. A user without groups has ``gids == ()``.
    """

    name: str
    gecos: str
    dir: str
    shell: str
    groups: Optional[Dict[str, int]] = None
    gids: Optional[Tuple[int, ...]] = None

    def __post_init__(self) -> None:
        if (self.groups is None) == (self.gids is None):
            raise IdentityError("identity: exactly one of groups and gids must be set")
        for field in ("name", "gecos", "dir", "shell"):
            if not isinstance(getattr(self, field), str):
                raise IdentityError(f"identity: {field} must be a string")
        if self.groups is not None:
            for gname, gid in self.groups.items():
                if not isinstance(gname, str):
                    raise IdentityError("identity: group names must be strings")
                _check_id(gid, f"groups[{gname!r}]")
        else:
            assert self.gids is not None
            for i, gid in enumerate(self.gids):
                _check_id(gid, f"gids[{i}]")

    def __hash__(self) -> int:  # groups is a dict: hash a frozen view of it
        groups = tuple(self.groups.items()) if self.groups is not None else None
        return hash((self.name, self.gecos, self.dir, self.shell, groups, self.gids))

    @property
    def group_ids(self) -> Tuple[int, ...]:
        """The gids in order, whichever form the identity carries."""
        if self.groups is not None:
            return tuple(self.groups.values())
        return tuple(self.gids or ())

    def to_json(self) -> Dict[str, Any]:
        """The "id" object as Slurm writes it (key order is irrelevant: libjwt
        sorts keys when it serialises the claims)."""
        obj: Dict[str, Any] = {"name": self.name, "gecos": self.gecos,
                               "dir": self.dir, "shell": self.shell}
        if self.groups is not None:
            obj["groups"] = dict(self.groups)
        elif self.gids:
            obj["gids"] = list(self.gids)
        return obj


def _check_id(value: Any, field: str) -> int:
    # bool is an int subclass in Python but never a JSON integer.
    if type(value) is not int:
        raise IdentityError(f"identity: {field} must be an integer, not {type(value).__name__}")
    if not 0 <= value <= UINT32_MAX:
        raise IdentityError(f"identity: {field} is outside 0..{UINT32_MAX}")
    return value


def identity_from_user(uid: int, gid: Optional[int] = None) -> Identity:
    """Build the identity of ``uid`` from the local user database, like Slurm's
    ``fetch_identity(uid, gid, group_names=true)``: the passwd entry, then the
    group list of the user with ``gid`` (default: the passwd primary group)
    first, each group named by ``getgrgid`` (its number when it has no name)."""
    try:
        pw = pwd.getpwuid(uid)
    except (KeyError, OverflowError):
        raise IdentityError(f"identity: no passwd entry for uid {uid}") from None
    primary = pw.pw_gid if gid is None else gid
    try:
        gids: List[int] = os.getgrouplist(pw.pw_name, primary)
    except OSError:
        gids = [primary]
    groups: Dict[str, int] = {}
    for g in gids:
        try:
            gname = grp.getgrgid(g).gr_name
        except KeyError:
            gname = str(g)
        groups.setdefault(gname, g)
    return Identity(name=pw.pw_name, gecos=pw.pw_gecos, dir=pw.pw_dir, shell=pw.pw_shell,
                    groups=groups)


def _string_field(obj: Dict[str, Any], field: str) -> str:
    if field not in obj:
        raise IdentityError(f"identity: missing field {field!r}")
    value = obj[field]
    if value is None and field != "name":
        return ""  # Slurm writes a NULL passwd field as JSON null
    if not isinstance(value, str):
        raise IdentityError(f"identity: field {field!r} must be a string")
    return value


def parse_identity(obj: Any) -> Identity:
    """Validate a received "id" object strictly and return the Identity.

    Refused, each with an :class:`~slurmauth_fast.errors.IdentityError` naming
    the field: a non-object, a missing or non-string name/gecos/dir/shell
    (gecos/dir/shell may be null), both "groups" and "gids", a "groups" that is
    not an object of integers or a "gids" that is not a list of integers, any
    gid that is a float, bool or string or lies outside 0..4294967295, and
    more than :data:`MAX_GROUPS` groups. Unknown fields are ignored, as Slurm
    ignores them."""
    if not isinstance(obj, dict):
        raise IdentityError("identity: \"id\" must be a JSON object")
    name = _string_field(obj, "name")
    gecos = _string_field(obj, "gecos")
    home = _string_field(obj, "dir")
    shell = _string_field(obj, "shell")
    has_groups, has_gids = "groups" in obj, "gids" in obj
    if has_groups and has_gids:
        raise IdentityError("identity: both \"groups\" and \"gids\" are present")
    if has_groups:
        groups = obj["groups"]
        if not isinstance(groups, dict):
            raise IdentityError("identity: \"groups\" must be an object of name: gid")
        if len(groups) > MAX_GROUPS:
            raise IdentityError(f"identity: \"groups\" has more than {MAX_GROUPS} entries")
        checked = {k: _check_id(v, f"groups[{k!r}]") for k, v in groups.items()}
        return Identity(name, gecos, home, shell, groups=checked)
    if has_gids:
        gids = obj["gids"]
        if not isinstance(gids, list):
            raise IdentityError("identity: \"gids\" must be a list of gids")
        if len(gids) > MAX_GROUPS:
            raise IdentityError(f"identity: \"gids\" has more than {MAX_GROUPS} entries")
        return Identity(name, gecos, home, shell,
                        gids=tuple(_check_id(v, f"gids[{i}]") for i, v in enumerate(gids)))
    return Identity(name, gecos, home, shell, gids=())
