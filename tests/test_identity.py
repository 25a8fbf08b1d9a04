"""The "id" identity object: built from the local user database like Slurm,
serialised as Slurm writes it, and validated strictly when received."""
import grp
import os
import pwd

import pytest
from hypothesis import given, strategies as st

from slurmauth_fast.errors import ClaimsError, IdentityError
from slurmauth_fast.identity import Identity, identity_from_user, parse_identity

BASE = {"name": "alice", "gecos": "Alice A", "dir": "/home/alice", "shell": "/bin/bash"}


def test_from_current_user_matches_passwd_and_grouplist():
    uid = os.getuid()
    pw = pwd.getpwuid(uid)
    ident = identity_from_user(uid)
    assert (ident.name, ident.gecos, ident.dir, ident.shell) == (
        pw.pw_name, pw.pw_gecos, pw.pw_dir, pw.pw_shell)
    assert ident.gids is None and ident.groups is not None
    expected = os.getgrouplist(pw.pw_name, pw.pw_gid)
    assert list(ident.groups.values()) == list(dict.fromkeys(expected))
    # primary group first, named like getgrgid
    first_name, first_gid = next(iter(ident.groups.items()))
    assert first_gid == pw.pw_gid
    assert first_name == grp.getgrgid(pw.pw_gid).gr_name


def test_explicit_gid_goes_first():
    ident = identity_from_user(0, gid=4242)
    assert ident.group_ids[0] == 4242
    assert "4242" in ident.groups or grp.getgrgid(4242)  # unnamed group falls back to its number


def test_unknown_uid():
    with pytest.raises(IdentityError):
        identity_from_user(4294967290)


def test_to_json_round_trip():
    ident = Identity(groups={"users": 100, "wheel": 10}, **BASE)
    obj = ident.to_json()
    assert obj == dict(BASE, groups={"users": 100, "wheel": 10})
    assert parse_identity(obj) == ident
    g = Identity(gids=(5, 6), **BASE)
    assert g.to_json() == dict(BASE, gids=[5, 6]) and parse_identity(g.to_json()) == g
    none = Identity(gids=(), **BASE)
    assert none.to_json() == BASE and parse_identity(BASE) == none


def test_identity_error_is_claims_error():
    assert issubclass(IdentityError, ClaimsError)


@pytest.mark.parametrize("obj, field", [
    ([], "object"),
    ({**BASE, "name": 3}, "name"),
    ({k: v for k, v in BASE.items() if k != "shell"}, "shell"),
    ({**BASE, "groups": {"a": 1}, "gids": [1]}, "both"),
    ({**BASE, "groups": [1]}, "groups"),
    ({**BASE, "groups": {"a": 1.0}}, "groups['a']"),
    ({**BASE, "groups": {"a": True}}, "groups['a']"),
    ({**BASE, "groups": {"a": "1"}}, "groups['a']"),
    ({**BASE, "groups": {"a": -1}}, "groups['a']"),
    ({**BASE, "gids": {"a": 1}}, "gids"),
    ({**BASE, "gids": [1, 4294967296]}, "gids[1]"),
    ({**BASE, "gids": [False]}, "gids[0]"),
])
def test_parse_rejects(obj, field):
    with pytest.raises(IdentityError) as e:
        parse_identity(obj)
    assert field in str(e.value)


def test_null_passwd_fields_become_empty():
    assert parse_identity({**BASE, "gecos": None}).gecos == ""
    with pytest.raises(IdentityError):
        parse_identity({**BASE, "name": None})


@given(st.lists(st.integers(0, 4294967295), max_size=20))
def test_gids_round_trip(gids):
    ident = Identity(gids=tuple(gids), **BASE)
    assert parse_identity(ident.to_json()) == ident
