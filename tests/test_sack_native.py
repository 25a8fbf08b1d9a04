"""The kiosk's C loop (SackServer(native=True), csrc/sack_serve.c): the same
answers as the Python loop, byte for byte, the same caps and deadlines, the
requests it cannot answer handed to Python, key reloads under load.

Over real unix sockets with real keys; credentials are checked against the
package's own creator (the very token for the same claims) and Verifier."""
import base64
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from munged import connect_as
from test_sack import ThreadKiosk, load_keys, raw_exchange, short_dir, write_key

from slurmauth_fast import exceptions as errors
from slurmauth_fast import sack
from slurmauth_fast.sack.wire import encode_token_reply, encode_verify_reply, unpack_token_reply
from slurmauth_fast.identity import identity_from_user
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY, Keyring
from slurmauth_fast.tokens import Verifier, create_credential

NOBODY = 65534
HANG_GUARD = 60  # seconds: only to turn a hang into a failure, never a timing assertion
ROOT = Path(__file__).resolve().parent.parent
TTL = 77
CLUSTER = "natcl"


@pytest.fixture(scope="module")
def sockdir():
    d = short_dir()
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def keyfile(sockdir):
    return write_key(Path(sockdir) / "slurm.key", os.urandom(32))


@pytest.fixture(scope="module")
def keyring(keyfile):
    return load_keys(keyfile)


@pytest.fixture(scope="module")
def native(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "n.socket"), cluster=CLUSTER, ttl=TTL,
                    request_timeout=1.0, native=True)
    yield k
    k.close()


@pytest.fixture(scope="module")
def python(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "p.socket"), cluster=CLUSTER, ttl=TTL,
                    request_timeout=1.0, native=False)
    yield k
    k.close()


def claims_of(reply):
    token = unpack_token_reply(reply).decode()
    seg = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def expected_reply(keyring, reply, uid, gid, r_uid, data):
    """What the Python path signs for this peer and request, at the reply's iat."""
    iat = claims_of(reply)["iat"]
    return encode_token_reply(create_credential(
        keyring, uid=uid, gid=gid, context="sack", ruid=r_uid, payload=data or None, ttl=TTL,
        cluster=CLUSTER, now=iat))


def wait_stat(kiosk, name, value):
    kiosk.wait_stat(name, value)


def wait_closed(kiosk):
    deadline = time.monotonic() + HANG_GUARD
    while kiosk.server.connection_count:
        assert time.monotonic() < deadline
        time.sleep(0.01)


# --- the same answers --------------------------------------------------------

@pytest.mark.parametrize("r_uid,data", [(SLURM_AUTH_UID_ANY, b"\x02" + bytes(32)), (0, b""),
                                        (1000, b"x"), (SLURM_AUTH_UID_ANY, bytes(range(256)) * 3)])
def test_c_reply_is_the_python_credential_byte_for_byte(python, keyring, sockdir, r_uid, data):
    native = ThreadKiosk(keyring, os.path.join(sockdir, "bb.socket"), cluster=CLUSTER, ttl=TTL,
                         native=True)
    try:
        req = sack.encode_create_request(r_uid, data)
        for k in (native, python):
            reply = raw_exchange(k.path, req)
            assert reply == expected_reply(keyring, reply, os.getuid(), os.getgid(), r_uid, data)
            claims = claims_of(reply)
            assert claims["exp"] - claims["iat"] == TTL and claims["context"] == "sack"
        # answered in C, not handed up (the counters come with the loop's next round)
        wait_stat(native, "c_created", 1)
        assert native.server.stats["c_handed_up"] == 0
    finally:
        native.close()


def test_another_uid_is_signed_with_its_own_ids_in_c(native, keyring):
    req = sack.encode_create_request(SLURM_AUTH_UID_ANY, b"p")
    (s,) = connect_as(NOBODY, native.path, 1, data=req)
    try:
        s.settimeout(HANG_GUARD)
        reply = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    finally:
        s.close()
    assert reply == expected_reply(keyring, reply, NOBODY, NOBODY, SLURM_AUTH_UID_ANY, b"p")


def test_verify_goes_to_python_and_answers_alike(native, python, keyring):
    good = create_credential(keyring, uid=0, gid=0, context="sack", ruid=SLURM_AUTH_UID_ANY)
    forged = create_credential(Keyring.from_key_bytes(os.urandom(32)), uid=0, gid=0, context="sack")
    for token in (good, forged, "x.y.z"):
        req = sack.encode_verify_request(token)
        assert raw_exchange(native.path, req) == raw_exchange(python.path, req)
    assert raw_exchange(native.path, sack.encode_verify_request(good)) == encode_verify_reply(0)


def hdr(version, length, rpc):
    return version.to_bytes(2, "big") + length.to_bytes(4, "big") + rpc.to_bytes(4, "big")


BAD_INPUTS = {
    "empty": b"",
    "short header": b"\x2d\x00\x00\x00",
    "header only": hdr(0x2D00, 8, sack.SACK_CREATE),
    "length below 8": hdr(0x2D00, 7, sack.SACK_CREATE) + bytes(8),
    "oversized length": hdr(0x2D00, 0xFFFFFFF0, sack.SACK_CREATE) + bytes(64),
    "over max_request": hdr(0x2D00, sack.DEFAULT_MAX_REQUEST, sack.SACK_CREATE) + bytes(64),
    "unknown rpc": hdr(0x2D00, 16, 1234) + bytes(8),
    "create short body": hdr(0x2D00, 12, sack.SACK_CREATE) + bytes(4),
    "create packmem past the end": hdr(0x2D00, 16, sack.SACK_CREATE) + bytes(4) + (9).to_bytes(4, "big"),
    "create trailing bytes": hdr(0x2D00, 18, sack.SACK_CREATE) + bytes(4) + (1).to_bytes(4, "big") + b"ab",
    "create packmem over 1 GiB": hdr(0x2D00, 16, sack.SACK_CREATE) + bytes(4) + (0xFFFFFFFF).to_bytes(4, "big"),
    "verify garbage": hdr(0x2D00, 14, sack.SACK_VERIFY) + b"\x00\x00\x00\x02a\x00",
    "verify NULL token": hdr(0x2D00, 12, sack.SACK_VERIFY) + bytes(4),
    "truncated body": hdr(0x2D00, 50, sack.SACK_CREATE) + bytes(10),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gets_the_same_refusal(native, python, name):
    data = BAD_INPUTS[name]
    got = raw_exchange(native.path, data)
    assert got == raw_exchange(python.path, data) == b""


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    st.builds(lambda v, rpc, body, extra: hdr(v, 8 + len(body) + extra, rpc) + body,
              st.integers(0, 0xFFFF), st.sampled_from([sack.SACK_CREATE, sack.SACK_VERIFY, 0]),
              st.binary(max_size=64), st.sampled_from([0, 0, 1, -1])),
    st.builds(lambda r, d: sack.encode_create_request(r, d),
              st.integers(0, 0xFFFFFFFF), st.binary(max_size=100)),
))
def test_any_request_gets_the_same_answer_from_both_loops(native, python, keyring, data):
    got = raw_exchange(native.path, data)
    want = raw_exchange(python.path, data)
    if not want:
        assert got == b""
    elif data[6:10] == sack.SACK_CREATE.to_bytes(4, "big"):
        req = sack.decode_create_body(data[sack.HEADER_LEN:2 + int.from_bytes(data[2:6], "big")])
        assert got == expected_reply(keyring, got, os.getuid(), os.getgid(), req.r_uid, req.data)
        assert want == expected_reply(keyring, want, os.getuid(), os.getgid(), req.r_uid, req.data)
    else:
        assert got == want


# --- caps and deadlines in C ---------------------------------------------------

def test_uid_cap_and_read_deadline_are_enforced_in_c(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "cap.socket"), max_connections=8,
                    max_connections_per_uid=2, read_timeout=0.3, native=True)
    try:
        idle = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.connect(k.path)
            idle.append(s)
        deadline = time.monotonic() + HANG_GUARD
        while k.server.connection_count < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # a third from the same uid is closed at once, without a reply
        assert raw_exchange(k.path, sack.encode_create_request(0)) == b""
        wait_stat(k, "over_uid_cap", 1)
        # another uid is still served
        (other,) = connect_as(NOBODY, k.path, 1, data=sack.encode_create_request(0))
        other.settimeout(HANG_GUARD)
        assert other.recv(4096)
        other.close()
        # the silent ones lose their slots at the read deadline
        for s in idle:
            s.settimeout(HANG_GUARD)
            assert s.recv(16) == b""
            s.close()
        wait_stat(k, "read_timeouts", 2)
        wait_closed(k)
        assert k.server._per_uid == {}
        assert k.server.stats["bad_requests"] == 0
    finally:
        k.close()


def test_max_connections_in_c_keeps_the_rest_in_the_backlog(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "max.socket"), max_connections=2,
                    max_connections_per_uid=1, request_timeout=0.5, native=True)
    try:
        held = socket.socket(socket.AF_UNIX)
        held.connect(k.path)
        (other,) = connect_as(NOBODY, k.path, 1)
        deadline = time.monotonic() + HANG_GUARD
        while k.server.connection_count < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # the table is full: a new connection waits in the backlog, is not refused, and
        # is served once the deadlines free the slots (its own uid's slot included)
        tok = sack.sack_create(0, socket_path=k.path, timeout=HANG_GUARD)
        assert Verifier(keyring).verify(tok).uid == os.getuid()
        assert k.server.stats["over_uid_cap"] == 0
        held.close()
        other.close()
    finally:
        k.close()


def test_request_deadline_covers_the_python_lookup(keyring, sockdir, monkeypatch):
    from slurmauth_fast.sack import server as server_mod

    release = threading.Event()

    def slow(uid, gid):
        release.wait(HANG_GUARD)
        return None

    monkeypatch.setattr(server_mod, "_lookup_identity", slow)
    k = ThreadKiosk(keyring, os.path.join(sockdir, "slow.socket"), use_client_ids=True,
                    request_timeout=0.3, native=True)
    try:
        assert raw_exchange(k.path, sack.encode_create_request(0)) == b""
        wait_stat(k, "request_timeouts", 1)
        release.set()  # the late answer finds its connection gone: nothing breaks
        assert sack.sack_create(0, socket_path=k.path, timeout=HANG_GUARD)
    finally:
        release.set()
        k.close()


# --- what C hands to Python ------------------------------------------------------

def test_client_ids_creates_are_looked_up_by_python(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "ids.socket"), use_client_ids=True, native=True)
    try:
        tok = sack.sack_create(SLURM_AUTH_UID_ANY, b"d", socket_path=k.path)
        cred = Verifier(keyring, use_client_ids=True).verify(tok)
        assert cred.identity == identity_from_user(os.getuid(), os.getgid())
        wait_stat(k, "c_handed_up", 1)
        assert k.server.stats["c_created"] == 0
    finally:
        k.close()


def test_a_cluster_c_cannot_hold_falls_back_to_python(keyring, sockdir):
    long_cluster = "c" * 300   # longer than the C loop's copy: every create goes to Python
    k = ThreadKiosk(keyring, os.path.join(sockdir, "long.socket"), cluster=long_cluster, native=True)
    try:
        tok = sack.sack_create(SLURM_AUTH_UID_ANY, socket_path=k.path)
        assert Verifier(keyring).verify(tok).cluster == long_cluster
        wait_stat(k, "c_handed_up", 1)
        assert k.server.stats["c_created"] == 0
    finally:
        k.close()


def test_reload_under_load_swaps_keys_without_a_failure(sockdir):
    keyfile = Path(sockdir) / "reload.key"
    keys = [os.urandom(32)]
    write_key(keyfile, keys[0])
    ring = load_keys(keyfile)
    k = ThreadKiosk(ring, os.path.join(sockdir, "reload.socket"), native=True)
    tokens, failures = [], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                tokens.append(sack.sack_create(SLURM_AUTH_UID_ANY, b"r", socket_path=k.path,
                                               timeout=HANG_GUARD))
            except errors.SackError as e:
                failures.append(e)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            time.sleep(0.05)
            keys.append(os.urandom(32))
            write_key(keyfile, keys[-1])
            k.server.request_reload()
        # the last key is in use once the loop has reloaded
        last = Verifier(Keyring.from_key_bytes(keys[-1]))
        deadline = time.monotonic() + HANG_GUARD
        while True:
            try:
                last.verify(sack.sack_create(SLURM_AUTH_UID_ANY, socket_path=k.path))
                break
            except errors.CredentialError:
                assert time.monotonic() < deadline
                time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(HANG_GUARD)
        k.close()
    assert not failures and tokens
    verifiers = [Verifier(Keyring.from_key_bytes(key)) for key in keys]
    for tok in tokens:   # every credential is signed by one of the keys in turn
        ok = 0
        for v in verifiers:
            try:
                v.verify(tok)
                ok += 1
            except errors.CredentialError:
                pass
        assert ok == 1


@pytest.mark.parametrize("flag", ["--native", "--python-loop"])
def test_cli_loop_flags(sockdir, keyfile, keyring, flag):
    path = os.path.join(sockdir, "cli-loop.socket")
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_CONF", "SLURMAUTH_FAST_SACK_NATIVE")}
    proc = subprocess.Popen([sys.executable, "-m", "slurmauth_fast.cli", "sackd", flag,
                             "--socket", path, "--key", str(keyfile), "--conf-dir", sockdir], env=env)
    try:
        deadline = time.monotonic() + HANG_GUARD
        while True:
            try:
                tok = sack.sack_create(0, b"c", socket_path=path)
                break
            except errors.SackConnectError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        assert Verifier(keyring, verifier_uid=0).verify(tok).payload == b"c"
    finally:
        proc.terminate()
        proc.wait(HANG_GUARD)


def test_c_loop_is_the_default_and_env_zero_turns_it_off(keyring, sockdir, monkeypatch):
    path = os.path.join(sockdir, "d.socket")
    monkeypatch.delenv("SLURMAUTH_FAST_SACK_NATIVE", raising=False)
    assert sack.SackServer(keyring, socket_path=path).native
    assert not sack.SackServer(keyring, socket_path=path, native=False).native
    monkeypatch.setenv("SLURMAUTH_FAST_SACK_NATIVE", "0")
    assert not sack.SackServer(keyring, socket_path=path).native
    assert sack.SackServer(keyring, socket_path=path, native=True).native


# --- the whole kiosk suite with the Python loop -------------------------------------

def test_kiosk_suite_passes_with_the_python_loop():
    """tests/test_sack.py and tests/test_sack_limits.py run against the C loop (the
    default); here, unchanged, against the Python loop too (their daemons inherit
    the switch)."""
    env = dict(os.environ, SLURMAUTH_FAST_SACK_NATIVE="0")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        "-m", "not real_slurm", "tests/test_sack.py", "tests/test_sack_limits.py"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


# --- use_client_ids: the identity cache (C loop, opt-in) ---------------------------

class CountingLookup:
    """Stands in for the kiosk's passwd/group lookup, counting the calls."""

    def __init__(self, identity_of):
        self.calls = 0
        self.identity_of = identity_of

    def __call__(self, uid, gid):
        self.calls += 1
        return self.identity_of(uid, gid)


def ids_kiosk(keyring, sockdir, name, monkeypatch, identity_of, **kw):
    from slurmauth_fast.sack import server as server_mod

    lookup = CountingLookup(identity_of)
    monkeypatch.setattr(server_mod, "_lookup_identity", lookup)
    k = ThreadKiosk(keyring, os.path.join(sockdir, name), use_client_ids=True, cluster=CLUSTER,
                    ttl=TTL, native=True, **kw)
    return k, lookup


def expected_ids_reply(keyring, reply, r_uid, data, identity):
    iat = claims_of(reply)["iat"]
    return encode_token_reply(create_credential(
        keyring, uid=os.getuid(), gid=os.getgid(), context="sack", ruid=r_uid, payload=data or None,
        ttl=TTL, cluster=CLUSTER, now=iat, identity=identity))


def test_identity_cache_signs_in_c_after_the_first_lookup(keyring, sockdir, monkeypatch):
    k, lookup = ids_kiosk(keyring, sockdir, "idc.socket", monkeypatch,
                          lambda uid, gid: identity_from_user(uid, gid), identity_cache=600)
    identity = identity_from_user(os.getuid(), os.getgid())
    try:
        for i in range(4):
            data = bytes([i]) * 33
            reply = raw_exchange(k.path, sack.encode_create_request(SLURM_AUTH_UID_ANY, data))
            assert reply == expected_ids_reply(keyring, reply, SLURM_AUTH_UID_ANY, data, identity)
            assert claims_of(reply)["id"] == identity.to_json()
        wait_stat(k, "c_identity_hits", 3)
        assert lookup.calls == 1 and k.server.stats["c_handed_up"] == 1
        # a reload empties the cache: the next one is looked up again
        k.server.request_reload()
        deadline = time.monotonic() + HANG_GUARD
        while lookup.calls == 1:
            reply = raw_exchange(k.path, sack.encode_create_request(0, b"after"))
            assert reply == expected_ids_reply(keyring, reply, 0, b"after", identity)
            assert time.monotonic() < deadline
    finally:
        k.close()


def test_identity_cache_entries_expire(keyring, sockdir, monkeypatch):
    k, lookup = ids_kiosk(keyring, sockdir, "idx.socket", monkeypatch,
                          lambda uid, gid: identity_from_user(uid, gid), identity_cache=0.2)
    try:
        for _ in range(2):
            assert raw_exchange(k.path, sack.encode_create_request(0))
        assert lookup.calls == 1
        time.sleep(0.3)   # past the entry's lifetime (no timing is asserted)
        assert raw_exchange(k.path, sack.encode_create_request(0))
        assert lookup.calls == 2
    finally:
        k.close()


def test_identity_cache_keeps_a_failed_lookup_as_no_id(keyring, sockdir, monkeypatch):
    k, lookup = ids_kiosk(keyring, sockdir, "idn.socket", monkeypatch, lambda uid, gid: None,
                          identity_cache=600)
    try:
        for _ in range(3):
            reply = raw_exchange(k.path, sack.encode_create_request(7, b"n"))
            assert reply == expected_ids_reply(keyring, reply, 7, b"n", None)
            assert "id" not in claims_of(reply)
        assert lookup.calls == 1
        wait_stat(k, "c_created", 2)
    finally:
        k.close()


def test_without_identity_cache_every_create_is_looked_up(keyring, sockdir, monkeypatch):
    k, lookup = ids_kiosk(keyring, sockdir, "idz.socket", monkeypatch,
                          lambda uid, gid: identity_from_user(uid, gid))
    try:
        for _ in range(3):
            assert raw_exchange(k.path, sack.encode_create_request(0))
        assert lookup.calls == 3
        wait_stat(k, "c_handed_up", 3)
        assert k.server.stats["c_created"] == 0 and k.server.stats["c_identity_hits"] == 0
    finally:
        k.close()


@pytest.mark.parametrize("kw", [{"identity_cache": -1}, {"identity_cache": 5, "native": False}])
def test_identity_cache_settings_are_checked(keyring, sockdir, kw):
    with pytest.raises(errors.BadArgumentError):
        sack.SackServer(keyring, socket_path=os.path.join(sockdir, "neg.socket"), **kw)


def test_debug_logging_hands_every_request_to_python(keyring, sockdir, caplog):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "dbg.socket"), native=True)
    try:
        with caplog.at_level(logging.DEBUG, logger="slurmauth_fast.sack"):
            deadline = time.monotonic() + HANG_GUARD
            while not any("SACK rpc=64001" in r.getMessage() for r in caplog.records):
                assert sack.sack_create(0, b"d", socket_path=k.path)   # the level is seen next round
                assert time.monotonic() < deadline
        deadline = time.monotonic() + HANG_GUARD
        while not k.server.stats.get("c_handed_up"):   # refreshed after the loop's round
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # back at INFO the C loop signs again
        created = k.server.stats["c_created"]
        deadline = time.monotonic() + HANG_GUARD
        while k.server.stats["c_created"] == created:
            assert sack.sack_create(0, b"i", socket_path=k.path)
            assert time.monotonic() < deadline
    finally:
        k.close()
