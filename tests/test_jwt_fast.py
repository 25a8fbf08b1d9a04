"""auth/jwt in one C call (csrc/jwtverify.c): the same decisions as the old
Python verifier (tests/jwt_reference.py) and PyJWT on random headers and
claims, verify_many == verify, and the user cache."""
from __future__ import annotations

import base64
import json
import os
import pwd
import sys
from typing import Any, List

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast import HS256Key
from slurmauth_fast.jwt import JWTCredential, JWTVerifier, RS256KeySet
from slurmauth_fast.users import UserCache, lookup_user

sys.path.insert(0, os.path.dirname(__file__))
from jwt_reference import OldJWTVerifier  # noqa: E402

KEY = bytes(range(32))
NOW = 1_800_000_000
NO_SUCH_USER = "no-such-user-slurmauth-fast"
DAEMON = pwd.getpwnam("daemon")
_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_N = _RSA.public_key().public_numbers().n
JWKS = json.dumps({"keys": [{"kty": "RSA", "alg": "RS256", "kid": "k1", "e": "AQAB",
                             "n": base64.urlsafe_b64encode(_N.to_bytes(256, "big")).decode().rstrip("=")}]})


def b64u(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def hs_token(header: bytes, claims: bytes, key: bytes = KEY) -> bytes:
    return HS256Key(key).sign_raw(header, claims).encode()


def rs_token(header: bytes, claims: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.hashes import SHA256
    signing = b64u(header) + b"." + b64u(claims)
    return signing + b"." + b64u(_RSA.sign(signing, padding.PKCS1v15(), SHA256()))


def verifiers():
    """Configurations that cover every rule: HS256 only, RS256 only, both with
    userclaimfield and client ids, client ids only, SlurmUser daemon."""
    hkey = HS256Key(KEY)
    jwks = RS256KeySet.from_jwks(JWKS)
    return [JWTVerifier(hs256_key=hkey),
            JWTVerifier(jwks=jwks, userclaimfield="email"),
            JWTVerifier(hs256_key=hkey, jwks=jwks, use_jwt_client_ids=True, userclaimfield="uid"),
            JWTVerifier(hs256_key=hkey, use_jwt_client_ids_only=True, slurm_user_uid=DAEMON.pw_uid),
            JWTVerifier(hs256_key=hkey, userclaimfield="sun", max_len=300)]


VERIFIERS = verifiers()


def outcome(fn):
    """A credential's fields, or the exception class (the old verifier may
    raise other exceptions only where the new one does too)."""
    try:
        cred = fn()
    except E.SlurmAuthError as err:
        return type(err)
    assert isinstance(cred, JWTCredential)
    return (cred.username, cred.uid, cred.gid, cred.iat, cred.exp, cred.alg, cred.kid, cred.identity,
            cred.acting_for)


# --- raw JSON fragments: names and values as a token could carry them -------------

NAMES = ["exp", "iat", "sun", "username", "email", "uid", "gid", "id", "x", "s\\u0075n", "ex\\u0070",
         "\\u00e9", "Sun"]
INTS = ["%d" % NOW, "%d" % (NOW - 1), "0", "-0", "1", "-1", "4294967295", "4294967296",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "123456789012345678901234567890"]
REALS = ["1.5", "1e3", "-0.0", "1E400", "1e-400", "%d.0" % NOW, "17976931348623158e292",
         "17976931348623159e292"]
STRINGS = ['"root"', '"daemon"', '""', '"ro\\u006ft"', '"%s"' % NO_SUCH_USER, '"%d"' % DAEMON.pw_uid,
           '"\\u0000"', '"\\ud800"', '"\\ud83d\\ude00"', '"\\/x"', '"é"', '"a\\tb"', '"bad\\x"',
           '"\x01"', '"\\uDFFF"']
OTHERS = ["true", "false", "null", "[]", "{}", '[1,"a",{"b":null}]', '{"a":1,"a":2}',
          '{"name":"root","gecos":"","dir":"/root","shell":"/bin/sh","gids":[0]}',
          '{"name":"alice","gecos":"","dir":"/","shell":"/bin/sh","groups":{"a":1}}',
          "[" * 17 + "]" * 17, "[" * 15 + "]" * 15, "01", "1.", "-", "tru", "NaN", '"unterminated']
VALUES = INTS + REALS + STRINGS + OTHERS

value = st.sampled_from(VALUES)
member = st.tuples(st.sampled_from(NAMES), value)
ws = st.sampled_from(["", "", "", " ", "\n\t"])


@st.composite
def claims_text(draw):
    """Mostly-valid claims: exp, iat and sun usually right, then random members."""
    members = []
    exp = draw(st.sampled_from(["%d" % NOW, "%d" % (NOW + 1), "%d" % (NOW - 1)]))
    user = draw(st.sampled_from(['"root"', '"daemon"', '"%s"' % NO_SUCH_USER]))
    for name, good in (("exp", exp), ("iat", "%d" % NOW), ("sun", user)):
        if draw(st.integers(0, 9)):
            members.append((name, good if draw(st.integers(0, 6)) else draw(value)))
    members += draw(st.lists(member, max_size=3))
    members = draw(st.permutations(members))
    sep = draw(ws)
    body = ",".join(f'{sep}"{n}"{sep}:{sep}{v}' for n, v in members)
    return ("{" + body + sep + "}").encode("utf-8", "surrogatepass")


HEADERS = [b'{"alg":"HS256","typ":"JWT"}', b'{"alg":"HS256"}', b'{"typ":"jwt","alg":"HS256"}',
           b'{"alg":"HS\\u0032\\u00356"}', b'{"alg":"RS256","kid":"k1"}', b'{"alg":"RS256","kid":"k2"}',
           b'{"alg":"RS256"}', b'{"alg":"RS256","kid":null}', b'{"alg":"RS256","kid":1}',
           b'{"alg":"hs256"}', b'{"alg":"none"}', b'{"alg":null}', b'{"alg":["HS256"]}', b"{}",
           b'{"alg":"HS256","typ":"JWS"}', b'{"alg":"HS256","typ":null}', b'{"alg":"HS256","typ":1}',
           b'{"alg":"HS256","alg":"HS256"}', b'{"alg":"HS256","x":{"y":[1,2e5]}}', b"[1]",
           b'{"alg":"HS256","x":1e400}', b'{"alg":"HS256","kid":"k1","typ":"JWT"}',
           b'{"alg":"HS256"', b'{"alg":"RS256","kid":"k\\u0031"}']


@st.composite
def tokens(draw):
    """Mostly Slurm's HS256 header or a good RS256 one, signed to match; then
    other headers, the wrong key and single-byte mutations."""
    header = draw(st.sampled_from([HEADERS[0]] * 6 + [HEADERS[4]] * 3 + HEADERS))
    body = draw(claims_text())
    kind = draw(st.sampled_from(["ok"] * 6 + ["other", "wrongkey", "mutate"]))
    if (b'"RS256"' in header) == (kind != "other"):
        tok = rs_token(header, body)
    else:
        tok = hs_token(header, body, key=b"x" * 32 if kind == "wrongkey" else KEY)
    if kind == "mutate":
        i = draw(st.integers(0, len(tok) - 1))
        tok = tok[:i] + draw(st.sampled_from([b"A", b".", b"=", b"", b"AA", b"_"])) + tok[i + 1:]
    return tok


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tok=tokens(), wire=st.none() | st.sampled_from(["root", "daemon", NO_SUCH_USER, ""]))
def test_same_decisions_as_the_old_python_verifier(tok, wire):
    for v in VERIFIERS:
        old = OldJWTVerifier(v)
        want = outcome(lambda: old.verify(tok, username=wire, now=NOW))
        got = outcome(lambda: v.verify(tok, username=wire, now=NOW))
        if want != got and b'{"a":1,"a":2}' in base64.urlsafe_b64decode(tok.split(b".")[1] + b"==="):
            # a duplicate key inside a claim nobody reads: the old reader refused
            # the whole claims object, jansson (Slurm) and the scanner do not
            assert isinstance(got, tuple) or not isinstance(want, tuple)
            continue
        assert got == want, (v, tok)
        event("accepted" if isinstance(got, tuple) else got.__name__)


@settings(max_examples=300, deadline=None)
@given(tok=tokens())
def test_accepted_tokens_read_the_same_in_pyjwt(tok):
    """What we accept, PyJWT (lenient where we are strict) accepts and reads
    the same way: exp, iat and the user claim."""
    v = VERIFIERS[0]
    try:
        cred = v.verify(tok, now=NOW)
    except E.SlurmAuthError:
        return
    claims = pyjwt.decode(tok, KEY, algorithms=["HS256"], options={"verify_exp": False,
                                                                    "verify_iat": False})
    assert (claims["exp"], claims["iat"], claims["sun"]) == (cred.exp, cred.iat, cred.username)


@settings(max_examples=150, deadline=None)
@given(toks=st.lists(tokens(), max_size=9),
       wires=st.lists(st.none() | st.sampled_from(["root", "daemon"]), min_size=9, max_size=9))
def test_verify_many_equals_verify(toks, wires):
    for v in VERIFIERS:
        names = wires[:len(toks)]
        many = v.verify_many(toks, usernames=names, now=NOW)
        assert len(many) == len(toks)
        for tok, name, got in zip(toks, names, many):
            want = outcome(lambda: v.verify(tok, username=name, now=NOW))
            if isinstance(got, Exception):
                assert type(got) is want
            else:
                assert outcome(lambda: got) == want


def test_verify_many_arguments():
    v = VERIFIERS[0]
    tok = hs_token(b'{"alg":"HS256","typ":"JWT"}', b'{"exp":%d,"iat":1,"sun":"root"}' % NOW)
    assert v.verify_many([], now=NOW) == []
    assert [c.uid for c in v.verify_many([tok, tok.decode(), bytearray(tok)], now=NOW)] == [0, 0, 0]
    with pytest.raises(E.BadArgumentError):
        v.verify_many([tok], usernames=[], now=NOW)
    with pytest.raises(E.BadArgumentTypeError):
        v.verify_many([tok], usernames=[b"root"], now=NOW)
    with pytest.raises(E.BadArgumentTypeError):
        v.verify_many([1], now=NOW)


def test_escaped_user_and_userclaimfield():
    hkey = HS256Key(KEY)
    v = JWTVerifier(hs256_key=hkey, userclaimfield="pr\u00e9f")
    tok = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"pr\\u00e9f":"d\\u0061emon"}' % NOW)
    cred = v.verify(tok, now=NOW)
    assert (cred.username, cred.uid) == ("daemon", DAEMON.pw_uid)
    with pytest.raises(E.UserClaimError) as ei:
        v.verify(hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"pr\\u00e9f":""}' % NOW), now=NOW)
    assert ei.value.claim == "pr\u00e9f"


def test_now_argument():
    v = VERIFIERS[0]
    tok = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % NOW)
    assert v.verify(tok, now=NOW - 0.5).exp == NOW
    with pytest.raises(E.ExpiredError):
        v.verify(tok, now=NOW + 0.5)
    with pytest.raises(E.BadArgumentError):
        v.verify(tok, now=2**63)
    with pytest.raises(E.BadArgumentTypeError):
        v.verify(tok, now="now")


def test_large_tokens_use_their_own_scratch():
    v = JWTVerifier(hs256_key=HS256Key(KEY))
    pad = "x" * 20000
    tok = hs_token(b'{"alg":"HS256"}', json.dumps({"exp": NOW, "iat": 1, "sun": "root", "pad": pad}).encode())
    assert v.verify(tok, now=NOW).uid == 0
    small = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"daemon"}' % NOW)
    assert [c.username for c in v.verify_many([tok, small, tok], now=NOW)] == ["root", "daemon", "root"]


def test_tokens_around_the_thread_scratch_limit_verify_alike():
    """Up to LOCAL_TOKEN bytes a token is verified into the thread's C
    scratch, beyond into one of its own: the same answers on both sides."""
    from slurmauth_fast._bindings.authjwt import LOCAL_TOKEN
    v = JWTVerifier(hs256_key=HS256Key(KEY))
    base = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root","p":""}' % NOW)
    for size in (LOCAL_TOKEN - 1, LOCAL_TOKEN, LOCAL_TOKEN + 1, LOCAL_TOKEN + 2):
        pad = 0
        while True:
            claims = b'{"exp":%d,"iat":1,"sun":"root","p":"%s"}' % (NOW, b"x" * pad)
            tok = hs_token(b'{"alg":"HS256"}', claims)
            if len(tok) >= size:
                break
            pad += 1
        assert len(tok) in (size, size + 1) and len(base) < len(tok)
        # the thread's scratch holds every token up to LOCAL_TOKEN bytes
        from slurmauth_fast._bindings import authjwt as _aj
        local = _aj.verify_local(v.c_policy, tok, len(tok), NOW)
        assert (local == _aj.E_SCRATCH) == (len(tok) > LOCAL_TOKEN)
        if len(tok) <= LOCAL_TOKEN:
            assert local == 0 and _aj.head(_aj.local_view())[:4] == _aj.head(_aj.verify(v._policy, tok, NOW)[1])[:4]
        assert v.verify(tok, now=NOW).username == "root"
        assert v.verify(tok, now=NOW).username == "root"          # seen again
        with pytest.raises(E.ExpiredError):
            v.verify(tok, now=NOW + 1)
        bad = tok[:-2] + (b"A" if tok[-2:-1] != b"A" else b"B") + tok[-1:]
        with pytest.raises(E.SignatureError):
            v.verify(bad, now=NOW)


def test_verify_local_now_is_verify_local_at_the_clock():
    """aj_verify_local_now(p, t, n) is aj_verify_local(p, t, n, NOW_CLOCK):
    the same status and the same result, on tokens of every outcome."""
    from slurmauth_fast._bindings import authjwt as _aj
    from slurmauth_fast._bindings.authjwt import LOCAL_TOKEN
    v = JWTVerifier(hs256_key=HS256Key(KEY))
    good = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % (2 ** 40))
    toks = [good, good[:-2] + (b"A" if good[-2:-1] != b"A" else b"B") + good[-1:],
            hs_token(b'{"alg":"HS256"}', b'{"exp":5,"iat":1,"sun":"root"}'),          # expired
            hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1}' % (2 ** 40)),          # no user
            hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"%s"}' % (2 ** 40, b"x" * LOCAL_TOKEN)),
            b"not a token", b""]
    for tok in toks:
        status = _aj.verify_local_now(v.c_policy, tok, len(tok))
        view = bytes(_aj.local_view()) if status != _aj.E_SCRATCH else None
        assert status == _aj.verify_local(v.c_policy, tok, len(tok), _aj.NOW_CLOCK), tok[:40]
        if view is not None:
            assert bytes(_aj.local_view()) == view
    assert [_aj.verify_local_now(v.c_policy, t, len(t)) == 0 for t in toks] == [True] + [False] * 6


def test_threads_verifying_at_once_get_their_own_answers():
    """Each thread's C scratch is its own: tokens of different users verified
    in several threads at once (the GIL is released in C) keep their answers."""
    import threading
    v = JWTVerifier(hs256_key=HS256Key(KEY))
    users = ["root", "daemon", "root", "daemon"]
    toks = [hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":%d,"sun":"%s"}' % (NOW + i, i, u.encode()))
            for i, u in enumerate(users)]
    wrong: List[Any] = []

    def run(i: int) -> None:
        for j in range(3000):
            tok = toks[i] if j % 3 else toks[i] + b"x"      # a refusal now and then
            try:
                cred = v.verify(tok, now=NOW)
            except E.SlurmAuthError:
                if j % 3:
                    wrong.append((i, j, "refused"))
                continue
            if (cred.username, cred.iat, cred.exp) != (users[i], i, NOW + i) or not j % 3:
                wrong.append((i, j, cred))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(toks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_closed_key_is_refused():
    key = HS256Key(KEY)
    v = JWTVerifier(hs256_key=key)
    tok = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % NOW)
    assert v.verify(tok, now=NOW).uid == 0
    key.close()
    with pytest.raises(E.BadArgumentError):
        v.verify(tok, now=NOW)


# --- the user cache ------------------------------------------------------------------

USERS = ["root", "daemon", "bin", str(DAEMON.pw_uid), "0", NO_SUCH_USER, "", "4294967295", "x\u00e9"]


def uncached(name):
    try:
        return lookup_user(name)
    except E.UnknownUserError:
        return None


def cached(cache, name):
    try:
        return cache.lookup(name)
    except E.UnknownUserError:
        return None


@given(names=st.lists(st.sampled_from(USERS), max_size=20))
def test_cached_answers_equal_uncached(names):
    cache = UserCache(ttl=3600, maxsize=4)
    for name in names:
        assert cached(cache, name) == uncached(name)
    assert len(cache) <= 4


def test_old_lookup_is_the_new_one():
    from slurmauth_fast import jwt as slurm_jwt
    for name in USERS:
        try:
            want = pwd.getpwnam(name)[2:4]
        except KeyError:
            want = None
        if want is None and name.isdigit() and int(name) < 4294967295:
            try:
                want = pwd.getpwuid(int(name))[2:4]
            except KeyError:
                pass
        assert uncached(name) == (tuple(want) if want else None)
    assert not hasattr(slurm_jwt, "_lookup_user")    # one resolver: users.lookup_user


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class CountingResolver:
    def __init__(self):
        self.calls = []
        self.db = {"root": (0, 0), "alice": (2001, 2001)}

    def __call__(self, name):
        self.calls.append(name)
        if name not in self.db:
            raise E.UnknownUserError(f"no {name}")
        return self.db[name]


def test_ttl_expires_entries():
    clock, res = Clock(), CountingResolver()
    cache = UserCache(ttl=10, maxsize=8, clock=clock, resolve=res)
    assert cache.lookup("alice") == (2001, 2001)
    with pytest.raises(E.UnknownUserError):
        cache.lookup("bob")
    clock.t += 9.9
    res.db["alice"] = (3000, 3000)
    res.db["bob"] = (3001, 3001)
    assert cache.lookup("alice") == (2001, 2001)      # still cached
    with pytest.raises(E.UnknownUserError):           # so is the unknown answer
        cache.lookup("bob")
    assert res.calls == ["alice", "bob"]
    clock.t += 0.1
    assert cache.lookup("alice") == (3000, 3000)      # expired: asked again
    assert cache.lookup("bob") == (3001, 3001)
    assert res.calls == ["alice", "bob", "alice", "bob"]


def test_full_cache_still_answers_and_sweeps_expired():
    clock, res = Clock(), CountingResolver()
    res.db.update({f"u{i}": (i, i) for i in range(10)})
    cache = UserCache(ttl=5, maxsize=2, clock=clock, resolve=res)
    assert [cache.lookup(f"u{i}") for i in range(4)] == [(i, i) for i in range(4)]
    assert len(cache) == 2                  # the first two are held, the others asked each time
    cache.lookup("u3")
    assert res.calls.count("u3") == 2 and res.calls.count("u0") == 1
    clock.t += 5
    assert cache.lookup("u5") == (5, 5)     # full of expired entries: swept, u5 stored
    cache.lookup("u5")
    assert res.calls.count("u5") == 1


def test_verifier_asks_the_user_database_once_per_ttl():
    clock, res = Clock(), CountingResolver()
    v = JWTVerifier(hs256_key=HS256Key(KEY), users=UserCache(ttl=30, clock=clock, resolve=res))
    tok = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"alice"}' % NOW)
    for _ in range(5):
        assert v.verify(tok, now=NOW).uid == 2001
    assert [c.uid for c in v.verify_many([tok] * 5, now=NOW)] == [2001] * 5
    assert res.calls == ["alice"]
    clock.t += 30
    res.db["alice"] = (7, 7)
    assert v.verify(tok, now=NOW).uid == 7
    assert res.calls == ["alice", "alice"]
    # acting for another user resolves both through the cache
    root_tok = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % NOW)
    assert v.verify(root_tok, username="alice", now=NOW).uid == 7
    with pytest.raises(E.UnknownUserError):
        v.verify(root_tok, username="bob", now=NOW)
    assert res.calls == ["alice", "alice", "root", "bob"]


def test_a_token_seen_again_gets_the_same_credential_after_c_verified_it():
    clock, res = Clock(), CountingResolver()
    v = JWTVerifier(hs256_key=HS256Key(KEY), users=UserCache(ttl=30, clock=clock, resolve=res))
    tok = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"alice"}' % NOW)
    first = v.verify(tok, now=NOW)
    assert v.verify(tok, now=NOW) is first
    assert v.verify(tok, username="alice", now=NOW) is first
    # still checked in C every time: expiry, a wrong key, a changed byte
    with pytest.raises(E.ExpiredError):
        v.verify(tok, now=NOW + 1)
    with pytest.raises(E.SignatureError):
        v.verify(hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"alice"}' % NOW, key=b"y" * 32),
                 now=NOW)
    with pytest.raises(E.AlternateUserError):
        v.verify(tok, username="root", now=NOW)
    # another iat: another credential; the user database answer expired: rebuilt
    other = v.verify(hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":2,"sun":"alice"}' % NOW), now=NOW)
    assert other is not first and other.iat == 2
    clock.t += 30
    res.db["alice"] = (9, 9)
    again = v.verify(tok, now=NOW)
    assert again is not first and again.uid == 9 and v.verify(tok, now=NOW) is again
    # the user cache forgets everything: the credential is rebuilt from a new answer
    v.users.clear()
    res.db["alice"] = (10, 10)
    assert v.verify(tok, now=NOW).uid == 10


def test_the_credential_cache_is_bounded():
    from slurmauth_fast import jwt as slurm_jwt
    v = JWTVerifier(hs256_key=HS256Key(KEY))
    toks = [hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":%d,"sun":"root"}' % (NOW, i))
            for i in range(slurm_jwt.CREDENTIALS_MAX + 5)]
    assert [c.iat for c in v.verify_many(toks, now=NOW)] == list(range(len(toks)))
    assert len(v._creds) <= slurm_jwt.CREDENTIALS_MAX
    assert v.verify(toks[-1], now=NOW).iat == len(toks) - 1


# --- auth/jwt frames: one C call (parse + token), then the same steps as verify -----

FRAME_BODY = b"\x00\x00\x00\x07body"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tok=tokens(), wire=st.none() | st.sampled_from(["root", "daemon", NO_SUCH_USER, ""]),
       with_slurm=st.booleans())
def test_jwt_frames_verify_as_their_token_does(tok, wire, with_slurm):
    """FrameVerifier verifies an auth/jwt frame in one C call (parse and
    token; auth/slurm served beside it or not): the same outcome as
    JWTVerifier.verify on the token and packed username, and as the parsed
    frame's path (RpcFrame -> dispatch)."""
    from slurmauth_fast import rpc
    from slurmauth_fast.keys import Keyring
    from slurmauth_fast.verifier import Verifier
    slurm = Verifier(Keyring.from_key_bytes(KEY), verifier_uid=0) if with_slurm else None
    frame = rpc.pack_frame(2009, FRAME_BODY, credential=tok, plugin=rpc.AUTH_JWT, username=wire)
    packed = rpc.parse_frame(frame).auth_username
    assert packed == wire
    for v in VERIFIERS:
        fv = rpc.FrameVerifier(slurm, jwt=v)
        want = outcome(lambda: v.verify(tok, username=packed, now=NOW))
        got = outcome(lambda: fv.verify(frame, now=NOW).credential)
        assert got == want, (v, tok, wire)
        assert outcome(lambda: fv.verify(rpc.parse_frame(frame), now=NOW).credential) == want
        assert outcome(lambda: fv.verify(bytearray(frame), now=NOW).credential) == want


def test_jwt_frame_verdicts_and_large_tokens():
    """The C verdict of an auth/jwt frame names the token stage and the
    AJ_CL_* claim; a NULL token names auth/jwt; a token larger than the
    thread's scratch gets a scratch of its own and the same answer."""
    from slurmauth_fast import rpc
    from slurmauth_fast._bindings import ffi, lib
    v = JWTVerifier(hs256_key=HS256Key(KEY))
    fv = rpc.FrameVerifier(jwt=v)
    expired = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % (NOW - 1))
    frame = rpc.pack_frame(2009, FRAME_BODY, credential=expired, plugin=rpc.AUTH_JWT, username="root")
    opts, _, _ = rpc.parse_options()
    scratch = ffi.new("int64_t[]", 4096)
    f, verdict = ffi.new("sa_rpc_frame *"), ffi.new("sa_frame_verdict *")
    rc = lib.sa_verify_frame(frame, len(frame), opts, f, ffi.NULL, ffi.NULL, v.c_policy, NOW,
                             0, ffi.cast("uint8_t *", scratch), 8 * 4096, verdict)
    assert (rc, verdict.stage, verdict.claim) == (lib.SC_E_EXPIRED, lib.SA_STAGE_TOKEN, lib.AJ_CL_EXP)
    with pytest.raises(E.ExpiredError) as err:
        fv.verify(frame, now=NOW)
    assert err.value.claim == "exp"
    # no now: the current time, for the frame as for the token alone
    import time
    past = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % (int(time.time()) - 10))
    with pytest.raises(E.ExpiredError):
        v.verify(past)
    with pytest.raises(E.ExpiredError):
        fv.verify(rpc.pack_frame(2009, FRAME_BODY, credential=past, plugin=rpc.AUTH_JWT))
    future = hs_token(b'{"alg":"HS256"}', b'{"exp":%d,"iat":1,"sun":"root"}' % (int(time.time()) + 600))
    assert fv.verify(rpc.pack_frame(2009, FRAME_BODY, credential=future, plugin=rpc.AUTH_JWT)).uid == 0
    with pytest.raises(E.MissingCredentialError, match="auth/jwt section carries a NULL"):
        fv.verify(rpc.pack_frame(2009, FRAME_BODY, credential=None, plugin=rpc.AUTH_JWT), now=NOW)
    big = hs_token(b'{"alg":"HS256"}', json.dumps({"exp": NOW, "iat": 1, "sun": "daemon",
                                                   "pad": "x" * 30000}).encode())
    got = fv.verify(rpc.pack_frame(2009, FRAME_BODY, credential=big, plugin=rpc.AUTH_JWT), now=NOW)
    assert (got.plugin, got.credential.username, got.uid) == (rpc.AUTH_JWT, "daemon", DAEMON.pw_uid)
    with pytest.raises(E.SignatureError):
        fv.verify(rpc.pack_frame(2009, FRAME_BODY, credential=big[:-1] + b"A", plugin=rpc.AUTH_JWT),
                  now=NOW)
