"""auth/jwt (plugin 102): scontrol-token minting, slurmctld verification, RS256 JWKS.

Independent issuers and verifiers: PyJWT, libjwt (the library Slurm uses, via
ctypes) and ``cryptography`` for RSA keys. Every rejection is asserted with
its specific exception class.
"""
import base64
import datetime
import json
import os
import pwd

import jwt as pyjwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import event, given
from hypothesis import strategies as st

import libjwt_oracle
from slurmauth_fast import errors as E
from slurmauth_fast import jwt as slurm_jwt
from slurmauth_fast.identity import Identity, identity_from_user
from slurmauth_fast.jws import HS256Key
from slurmauth_fast.jwt import AuthAltParameters, JWTVerifier, RS256KeySet

KEY = bytes(range(32))
OTHER_KEY = b"another-key-of-32-bytes-length!!"
NOW = 1_800_000_000
DAEMON = pwd.getpwnam("daemon")
BIN = pwd.getpwnam("bin")
NO_SUCH_USER = "no-such-user-slurmauth-fast"


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64u(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def claims(user="root", **extra):
    c = {"iat": NOW - 10, "exp": NOW + 100, "sun": user}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def hs(c, key=KEY, headers=None, alg="HS256"):
    return pyjwt.encode(c, key, algorithm=alg, headers=headers)


@pytest.fixture(scope="module")
def hkey():
    return HS256Key(KEY)


@pytest.fixture(scope="module")
def libjwt():
    lj = libjwt_oracle.load()
    if lj is None:
        pytest.skip(libjwt_oracle.MISSING)
    return lj


@pytest.fixture(scope="module")
def rsa_keys():
    return {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in ("k1", "k2")}


def rsa_jwk(priv, kid, **extra):
    nums = priv.public_key().public_numbers()
    jwk = {"kty": "RSA", "alg": "RS256", "kid": kid, "use": "sig",
           "n": b64u(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
           "e": b64u(nums.e.to_bytes(3, "big"))}
    jwk.update(extra)
    return jwk


@pytest.fixture(scope="module")
def jwks_doc(rsa_keys):
    ec_pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {"keys": [
        {"kty": "oct", "alg": "HS256", "kid": "hs", "k": b64u(KEY)},          # skipped: alg/kty
        {"kty": "EC", "alg": "ES256", "kid": "ec", "crv": "P-256",             # skipped: alg/kty
         "x": b64u(ec_pub.x.to_bytes(32, "big")), "y": b64u(ec_pub.y.to_bytes(32, "big"))},
        rsa_jwk(rsa_keys["k1"], "k1"),
        rsa_jwk(rsa_keys["k2"], "k2", alg="rs256"),                           # alg compared case-insensitively
        {"kty": "RSA", "alg": "RS512", "kid": "rs512", "n": "AQAB", "e": "AQAB"},  # skipped: alg
    ]}


@pytest.fixture
def jwks_file(tmp_path, jwks_doc):
    p = tmp_path / "jwks.json"
    p.write_text(json.dumps(jwks_doc))
    p.chmod(0o644)  # public keys: world-readable is fine
    return p


@pytest.fixture
def key_file(tmp_path):
    p = tmp_path / "jwt_hs256.key"
    p.write_bytes(KEY)
    p.chmod(0o600)
    return p


def rs(c, priv, kid="k1"):
    headers = {"kid": kid} if kid is not None else None
    return pyjwt.encode(c, priv, algorithm="RS256", headers=headers)


def rs_raw(header, c, priv):
    """An RS256 signature over an arbitrary header (PyJWT validates its headers)."""
    si = f"{b64u(json.dumps(header).encode())}.{b64u(json.dumps(c).encode())}"
    return f"{si}.{b64u(priv.sign(si.encode(), padding.PKCS1v15(), hashes.SHA256()))}"


@pytest.fixture
def hs_verifier(hkey):
    return JWTVerifier(hs256_key=hkey)


@pytest.fixture
def rs_verifier(jwks_doc):
    return JWTVerifier(jwks=RS256KeySet.from_jwks(json.dumps(jwks_doc)))


# --- minting ----------------------------------------------------------------

def test_minted_token_is_exactly_scontrols(hkey):
    tok = slurm_jwt.create_token(hkey, "alice", caller_uid=0, now=NOW)
    h, c, s = tok.split(".")
    assert unb64u(h) == b'{"alg":"HS256","typ":"JWT"}'
    assert unb64u(c) == b'{"exp":%d,"iat":%d,"sun":"alice"}' % (NOW + 1800, NOW)
    assert len(unb64u(s)) == 32
    # PyJWT, an independent verifier, accepts it with the same key
    assert pyjwt.decode(tok, KEY, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}) == {
        "exp": NOW + 1800, "iat": NOW, "sun": "alice"}


def test_minted_token_byte_identical_to_libjwt(hkey, libjwt):
    for user, lifespan in [("alice", 1800), ("root", 1), ("slurm", 4294967293), ("é/ü\x1f\"\\", 60)]:
        ours = slurm_jwt.create_token(hkey, user, lifespan=lifespan, caller_uid=0, now=NOW)
        theirs = libjwt.encode([("iat", NOW), ("exp", NOW + lifespan), ("sun", user)], key=KEY)
        assert ours == theirs, user
        assert libjwt.decode(ours, KEY) == (0, {"exp": NOW + lifespan, "iat": NOW, "sun": user})


def test_json_escapes_like_jansson():
    """jansson writes \\u001F (upper-case hex); a literal backslash-u stays as it is."""
    from slurmauth_fast.jsonutil import dumps_compact
    assert dumps_compact({"sun": "a\x1f\x01b"}) == b'{"sun":"a\\u001F\\u0001b"}'
    assert dumps_compact({"sun": "\\u00ab\n"}) == b'{"sun":"\\\\u00ab\\n"}'


@given(user=st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                    min_size=1, max_size=40),
       now=st.integers(min_value=0, max_value=2**40), lifespan=st.integers(min_value=1, max_value=2**32 - 3))
def test_minting_matches_libjwt_bytes_for_any_user(user, now, lifespan):
    lj = libjwt_oracle.load()
    if lj is None:
        pytest.skip(libjwt_oracle.MISSING)
    ours = slurm_jwt.create_token(HS256Key(KEY), user, lifespan=lifespan, caller_uid=0, now=now)
    assert ours == lj.encode([("iat", now), ("exp", now + lifespan), ("sun", user)], key=KEY)


def test_default_lifespan_and_caller(hkey):
    tok = slurm_jwt.create_token(hkey)  # tests run as root in CI; any caller mints for itself
    c = json.loads(unb64u(tok.split(".")[1]))
    assert c["exp"] - c["iat"] == slurm_jwt.DEFAULT_LIFESPAN == 1800
    assert c["sun"] == pwd.getpwuid(os.getuid()).pw_name


@pytest.mark.parametrize("lifespan", [0, -1, -1800, 4294967294, 4294967295, 2**40])
def test_lifespan_out_of_range_refused(hkey, lifespan):
    with pytest.raises(E.LifespanError, match="lifespan"):
        slurm_jwt.create_token(hkey, "root", lifespan=lifespan, caller_uid=0)


@pytest.mark.parametrize("lifespan", [True, 1.5, "60", None])
def test_lifespan_must_be_int(hkey, lifespan):
    with pytest.raises(E.LifespanError):
        slurm_jwt.create_token(hkey, "root", lifespan=lifespan, caller_uid=0)


def test_lifespan_edges_accepted(hkey, hs_verifier):
    for lifespan in (1, 4294967293):
        tok = slurm_jwt.create_token(hkey, "root", lifespan=lifespan, caller_uid=0, now=NOW)
        assert hs_verifier.verify(tok, now=NOW).exp == NOW + lifespan


def test_only_root_or_slurmuser_mint_for_others(hkey):
    # an ordinary user mints for itself (default and explicit) ...
    for name in (None, "daemon"):
        tok = slurm_jwt.create_token(hkey, name, caller_uid=DAEMON.pw_uid, now=NOW)
        assert json.loads(unb64u(tok.split(".")[1]))["sun"] == "daemon"
    # ... but not for another user
    with pytest.raises(E.TokenCreationDeniedError, match="only root or SlurmUser"):
        slurm_jwt.create_token(hkey, "bin", caller_uid=DAEMON.pw_uid)
    # root and SlurmUser may
    slurm_jwt.create_token(hkey, "bin", caller_uid=0)
    slurm_jwt.create_token(hkey, "bin", caller_uid=DAEMON.pw_uid, slurm_user_uid=DAEMON.pw_uid)


def test_disable_token_creation(hkey):
    with pytest.raises(E.TokenCreationDeniedError, match="disable_token_creation"):
        slurm_jwt.create_token(hkey, None, caller_uid=DAEMON.pw_uid, disable_token_creation=True)
    slurm_jwt.create_token(hkey, "bin", caller_uid=0, disable_token_creation=True)
    slurm_jwt.create_token(hkey, "bin", caller_uid=DAEMON.pw_uid, slurm_user_uid=DAEMON.pw_uid,
                           disable_token_creation=True)


def test_caller_without_passwd_entry(hkey):
    with pytest.raises(E.TokenCreationError, match="no user name"):
        slurm_jwt.create_token(hkey, None, caller_uid=4000123)
    with pytest.raises(E.TokenCreationDeniedError):
        slurm_jwt.create_token(hkey, "root", caller_uid=4000123)


@pytest.mark.parametrize("user", ["", "a\x00b", 5])
def test_bad_username_refused(hkey, user):
    with pytest.raises(E.BadArgumentError):
        slurm_jwt.create_token(hkey, user, caller_uid=0)


# --- key files ----------------------------------------------------------------

def test_hs256_key_file_permissions(tmp_path, key_file):
    assert slurm_jwt.load_hs256_key(key_file).mac(b"x") == HS256Key(KEY).mac(b"x")
    key_file.chmod(0o640)  # group access is allowed
    slurm_jwt.load_hs256_key(key_file)
    for mode in (0o604, 0o602, 0o601, 0o644):
        key_file.chmod(mode)
        with pytest.raises(E.KeyPermissionError, match="insecure"):
            slurm_jwt.load_hs256_key(key_file)
    empty = tmp_path / "empty.key"
    empty.write_bytes(b"")
    empty.chmod(0o600)
    with pytest.raises(E.KeyFileError, match="empty"):
        slurm_jwt.load_hs256_key(empty)
    with pytest.raises(E.KeyFileError, match="cannot open"):
        slurm_jwt.load_hs256_key(tmp_path / "missing.key")


def test_jwks_file_permissions(jwks_file):
    for mode in (0o600, 0o644, 0o664, 0o444):  # readable by others: fine
        jwks_file.chmod(mode)
        assert RS256KeySet.load(jwks_file).kids == ("k1", "k2")
    for mode in (0o646, 0o602, 0o666):  # writable by others: fatal
        jwks_file.chmod(mode)
        with pytest.raises(E.KeyPermissionError, match="write access"):
            RS256KeySet.load(jwks_file)


def test_jwks_skips_other_algs_and_kty(jwks_doc):
    ks = RS256KeySet.from_jwks(json.dumps(jwks_doc))
    assert ks.kids == ("k1", "k2") and all(k.bits == 2048 for k in ks)
    # an RS256-tagged key of another kty is skipped too
    doc = {"keys": [dict(jwks_doc["keys"][2], kty="oct", kid="x"), jwks_doc["keys"][3]]}
    assert RS256KeySet.from_jwks(json.dumps(doc)).kids == ("k2",)
    # and an encryption key
    doc = {"keys": [dict(jwks_doc["keys"][2], use="enc"), jwks_doc["keys"][3]]}
    assert RS256KeySet.from_jwks(json.dumps(doc)).kids == ("k2",)
    # a key without alg is an RSA signing key all the same (Azure-style JWKS)
    doc = {"keys": [{k: v for k, v in jwks_doc["keys"][2].items() if k not in ("alg", "use")}]}
    assert RS256KeySet.from_jwks(json.dumps(doc)).kids == ("k1",)


def self_signed(priv):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(priv.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2020, 1, 1))
            .not_valid_after(datetime.datetime(2040, 1, 1)).sign(priv, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def test_jwks_x5c(rsa_keys):
    """Azure-style keys: the certificate alone, or beside n/e when they agree."""
    x5c = self_signed(rsa_keys["k1"])
    only_cert = {"kty": "RSA", "kid": "k1", "x5c": [x5c]}
    both = dict(rsa_jwk(rsa_keys["k1"], "k1"), x5c=[x5c])
    for jwk in (only_cert, both):
        v = JWTVerifier(jwks=RS256KeySet.from_jwks(json.dumps({"keys": [jwk]})))
        assert v.verify(rs(claims(), rsa_keys["k1"]), now=NOW).kid == "k1"
    with pytest.raises(E.JWKSError, match="different keys"):
        RS256KeySet.from_jwks(json.dumps({"keys": [dict(rsa_jwk(rsa_keys["k2"], "k1"), x5c=[x5c])]}))
    ec_cert = self_signed(ec.generate_private_key(ec.SECP256R1()))
    for bad, match in (([ec_cert], "does not hold an RSA key"), (["AAAA"], "certificate"),
                       ([x5c.rstrip("=") + "!"], "x5c"), ([], "x5c"), (x5c, "x5c")):
        with pytest.raises(E.JWKSError, match=match):
            RS256KeySet.from_jwks(json.dumps({"keys": [dict(only_cert, x5c=bad)]}))


def test_jwks_first_duplicate_kid_wins(jwks_doc, rsa_keys):
    doc = {"keys": [jwks_doc["keys"][2], dict(jwks_doc["keys"][3], kid="k1")]}
    v = JWTVerifier(jwks=RS256KeySet.from_jwks(json.dumps(doc)))
    assert v.verify(rs(claims(), rsa_keys["k1"]), now=NOW).kid == "k1"
    with pytest.raises(E.SignatureError):
        v.verify(rs(claims(), rsa_keys["k2"], kid="k1"), now=NOW)


@pytest.mark.parametrize("doc, match", [
    ("[]", "not a JSON object"),
    ('{"keys": {}}', "JSON array"),
    ('{"keys": [1]}', "not a JSON object"),
    ('{"keys": [], "keys": []}', "duplicate"),
    ('{"keys": []}', "no usable RS256 key"),
    ('{"keys": [{"kty": "oct", "alg": "HS256", "kid": "a", "k": "AAAA"}]}', "no usable RS256 key"),
])
def test_jwks_document_rules(doc, match):
    with pytest.raises(E.JWKSError, match=match):
        RS256KeySet.from_jwks(doc)


@pytest.mark.parametrize("change, match", [
    ({"kid": None}, "kid"),
    ({"kid": ""}, "kid"),
    ({"kid": 7}, "kid"),
    ({"n": None}, "n"),
    ({"n": None, "e": None}, "missing n and e"),
    ({"e": 65537}, "e"),
    ({"n": "not base64url!"}, "n"),
    ({"n": "AQAB=="}, "n"),
    ({"e": "AAE"}, "invalid RSA public key"),  # e = 1
])
def test_jwks_key_rules(rsa_keys, change, match):
    jwk = rsa_jwk(rsa_keys["k1"], "k1")
    for k, v in change.items():
        if v is None:
            del jwk[k]
        else:
            jwk[k] = v
    with pytest.raises(E.JWKSError, match=match):
        RS256KeySet.from_jwks(json.dumps({"keys": [jwk]}))


def test_jwks_refuses_small_rsa_keys():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    doc = json.dumps({"keys": [rsa_jwk(small, "small")]})
    with pytest.raises(E.JWKSError, match="1024 bits"):
        RS256KeySet.from_jwks(doc)
    assert RS256KeySet.from_jwks(doc, min_bits=1024).kids == ("small",)


# --- AuthAltParameters --------------------------------------------------------

def test_parse_auth_alt_parameters():
    p = AuthAltParameters.parse("jwt_key=/p/k,jwks=/p/j.json,userclaimfield=preferred_username,"
                                "disable_token_creation")
    assert p == AuthAltParameters(jwt_key="/p/k", jwks="/p/j.json", userclaimfield="preferred_username",
                                  disable_token_creation=True)
    assert AuthAltParameters.parse(None) == AuthAltParameters.parse("") == AuthAltParameters()
    q = AuthAltParameters.parse(" JWT_KEY = /a , use_jwt_client_ids_only,jwt_key=/b,foo=bar,,")
    assert q.jwt_key == "/a" and q.use_jwt_client_ids and q.use_jwt_client_ids_only
    assert q.unknown == ("foo=bar",)
    assert AuthAltParameters.parse("use_jwt_client_ids").use_jwt_client_ids_only is False


@pytest.mark.parametrize("text", ["jwt_key=", "jwt_key", "jwks= ", "userclaimfield",
                                  "disable_token_creation=1", "use_jwt_client_ids=yes", "jwt_key=a\x00b"])
def test_parse_auth_alt_parameters_errors(text):
    with pytest.raises(E.BadArgumentError):
        AuthAltParameters.parse(text)


def test_key_path_precedence(tmp_path):
    assert AuthAltParameters.parse("jwt_key=/k,jwks=/j").hs256_key_path("/ssl") == "/k"
    assert AuthAltParameters.parse("jwks=/j").hs256_key_path("/ssl") is None
    assert AuthAltParameters().hs256_key_path("/ssl") == "/ssl/jwt_hs256.key"
    with pytest.raises(E.KeyFileError, match="no jwt_key"):
        AuthAltParameters().hs256_key_path(None)


def test_from_config_loads_like_slurmctld(tmp_path, key_file, jwks_file, rsa_keys):
    v = JWTVerifier.from_config(None, state_save_location=tmp_path)
    assert v.jwks is None and v.verify(hs(claims()), now=NOW).alg == "HS256"
    v = JWTVerifier.from_config(f"jwks={jwks_file}", state_save_location=tmp_path)
    assert v.hs256_key is None and v.verify(rs(claims(), rsa_keys["k2"], "k2"), now=NOW).kid == "k2"
    v = JWTVerifier.from_config(f"jwks={jwks_file},jwt_key={key_file},userclaimfield=email")
    assert v.verify(hs({"iat": 1, "exp": NOW, "email": "root"}), now=NOW).username == "root"
    assert v.verify(rs(claims(), rsa_keys["k1"]), now=NOW).alg == "RS256"
    key_file.chmod(0o644)
    with pytest.raises(E.KeyPermissionError):
        JWTVerifier.from_config(None, state_save_location=tmp_path)


# --- verification: accepted tokens ---------------------------------------------

def test_verify_pyjwt_hs256(hs_verifier):
    cred = hs_verifier.verify(hs(claims("daemon")), now=NOW)
    assert cred == slurm_jwt.JWTCredential(username="daemon", uid=DAEMON.pw_uid, gid=DAEMON.pw_gid,
                                           iat=NOW - 10, exp=NOW + 100, alg="HS256", kid=None,
                                           identity=None, acting_for=None)
    assert cred.effective_user == "daemon"


def test_verify_libjwt_hs256(hs_verifier, libjwt):
    tok = libjwt.encode([("iat", NOW), ("exp", NOW + 5), ("sun", "bin")], key=KEY)
    cred = hs_verifier.verify(tok, now=NOW)
    assert (cred.username, cred.uid, cred.exp) == ("bin", BIN.pw_uid, NOW + 5)


def test_verify_libjwt_rs256(rs_verifier, rsa_keys, libjwt):
    pem = rsa_keys["k2"].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    tok = libjwt.encode([("iat", NOW), ("exp", NOW + 5), ("username", "daemon")],
                        alg=libjwt_oracle.JWT_ALG_RS256, key=pem, headers=[("kid", "k2")])
    cred = rs_verifier.verify(tok, now=NOW)
    assert (cred.username, cred.alg, cred.kid) == ("daemon", "RS256", "k2")


def test_verify_pyjwt_rs256(rs_verifier, rsa_keys):
    for kid in ("k1", "k2"):
        cred = rs_verifier.verify(rs(claims(), rsa_keys[kid], kid), now=NOW)
        assert (cred.username, cred.uid, cred.alg, cred.kid) == ("root", 0, "RS256", kid)


def test_our_tokens_verify_in_libjwt_and_back(hkey, hs_verifier, libjwt):
    tok = slurm_jwt.create_token(hkey, "daemon", caller_uid=0, now=NOW)
    assert libjwt.decode(tok, KEY)[0] == 0
    assert libjwt.decode(tok, OTHER_KEY)[0] != 0
    assert hs_verifier.verify(tok, now=NOW).uid == DAEMON.pw_uid


def test_user_claim_precedence(hkey):
    v = JWTVerifier(hs256_key=hkey, userclaimfield="preferred_username")
    both = {"iat": 1, "exp": NOW, "sun": "daemon", "username": "bin", "preferred_username": "root"}
    assert v.verify(hs(both), now=NOW).username == "daemon"
    del both["sun"]
    assert v.verify(hs(both), now=NOW).username == "bin"
    del both["username"]
    assert v.verify(hs(both), now=NOW).username == "root"
    # a non-string "sun" does not count (libjwt's jwt_get_grant returns NULL)
    assert v.verify(hs({"iat": 1, "exp": NOW, "sun": 0, "username": "bin"}), now=NOW).username == "bin"
    # without userclaimfield the custom claim is not used
    with pytest.raises(E.UserClaimError):
        JWTVerifier(hs256_key=hkey).verify(hs({"iat": 1, "exp": NOW, "preferred_username": "root"}), now=NOW)


def test_exp_equal_to_now_is_accepted(hs_verifier):
    assert hs_verifier.verify(hs(claims(exp=NOW)), now=NOW).exp == NOW


def test_numeric_user_name_resolves_like_uid_from_string(hs_verifier):
    cred = hs_verifier.verify(hs(claims(str(DAEMON.pw_uid))), now=NOW)
    assert (cred.uid, cred.gid) == (DAEMON.pw_uid, DAEMON.pw_gid)


def test_default_now_is_the_clock(hs_verifier):
    import time
    t = int(time.time())
    hs_verifier.verify(hs({"iat": t, "exp": t + 60, "sun": "root"}))
    with pytest.raises(E.ExpiredError):
        hs_verifier.verify(hs({"iat": t - 120, "exp": t - 60, "sun": "root"}))


# --- verification: rejections ---------------------------------------------------

def test_wrong_key(hs_verifier):
    with pytest.raises(E.SignatureError):
        hs_verifier.verify(hs(claims(), key=OTHER_KEY), now=NOW)


@pytest.mark.parametrize("bad_claims", [{"iat": 1, "exp": 2, "sun": "root"},     # expired
                                        {"iat": NOW, "exp": NOW + 60},           # no user
                                        {"iat": "x", "exp": NOW + 60, "sun": "root"}])
def test_wrong_key_reported_before_the_claims(hs_verifier, bad_claims):
    """The claims are read while the tag is computed; a wrong tag is still what is reported."""
    forged = hs(bad_claims, key=OTHER_KEY)
    with pytest.raises(E.SignatureError):
        hs_verifier.verify(forged, now=NOW)
    with pytest.raises(E.CredentialError) as right_key:
        hs_verifier.verify(hs(bad_claims), now=NOW)
    assert not isinstance(right_key.value, E.SignatureError)
    # the batch (tags first, two at a time) gives the same errors
    got = hs_verifier.verify_many([forged, hs(bad_claims), forged], now=NOW)
    assert [type(g) for g in got] == [E.SignatureError, type(right_key.value), E.SignatureError]
    assert str(got[1]) == str(right_key.value)


def test_tampered_claims(hs_verifier, rs_verifier, rsa_keys):
    for v, tok in ((hs_verifier, hs(claims("daemon"))), (rs_verifier, rs(claims("daemon"), rsa_keys["k1"]))):
        h, _c, s = tok.split(".")
        forged = f"{h}.{b64u(json.dumps(claims('root')).encode())}.{s}"
        with pytest.raises(E.SignatureError):
            v.verify(forged, now=NOW)


def test_alg_none(hs_verifier, rs_verifier):
    tok = pyjwt.encode(claims(), None, algorithm="none")
    for v in (hs_verifier, rs_verifier):
        with pytest.raises(E.AlgorithmError, match="'none'"):
            v.verify(tok, now=NOW)
    # a "none" token that carries a (valid HS256) signature is refused too
    h, c, _ = tok.split(".")
    with pytest.raises(E.AlgorithmError):
        hs_verifier.verify(f"{h}.{c}.{hs(claims()).split('.')[2]}", now=NOW)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algs(hs_verifier, alg):
    with pytest.raises(E.AlgorithmError, match=alg):
        hs_verifier.verify(hs(claims(), key=KEY * 2, alg=alg), now=NOW)


@pytest.mark.parametrize("header", [{"alg": "hs256"}, {"alg": "Hs256"}, {"alg": ["HS256"]}, {}, {"alg": None}])
def test_alg_must_be_exact(hkey, hs_verifier, header):
    tok = hkey.sign_raw(json.dumps(dict(header, typ="JWT")).encode(), json.dumps(claims()).encode())
    with pytest.raises(E.AlgorithmError):
        hs_verifier.verify(tok, now=NOW)


def test_typ_must_be_jwt(hkey, hs_verifier):
    for typ in ("jwt", "JWT"):
        tok = hkey.sign_raw(json.dumps({"alg": "HS256", "typ": typ}).encode(), json.dumps(claims()).encode())
        hs_verifier.verify(tok, now=NOW)
    for typ in ("JWS", "at+jwt", 1):
        tok = hkey.sign_raw(json.dumps({"alg": "HS256", "typ": typ}).encode(), json.dumps(claims()).encode())
        with pytest.raises(E.HeaderError, match="typ"):
            hs_verifier.verify(tok, now=NOW)


def test_rs256_token_with_hs_only_config(hs_verifier, rsa_keys):
    with pytest.raises(E.AlgorithmError, match="no jwks"):
        hs_verifier.verify(rs(claims(), rsa_keys["k1"]), now=NOW)


def test_hs256_token_with_rs_only_config(rs_verifier):
    with pytest.raises(E.AlgorithmError, match="no HS256 key"):
        rs_verifier.verify(hs(claims()), now=NOW)


def test_alg_confusion_rsa_public_key_as_hmac_key(jwks_doc, rsa_keys, hkey):
    """An HS256 token MACed with the RSA public key (PEM, DER or the JWK text)
    must never verify: not in an RS-only config, nor next to a real HS256 key."""
    pub = rsa_keys["k1"].public_key()
    secrets = [pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
               pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
               pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
               json.dumps(jwks_doc["keys"][2]).encode()]
    rs_only = JWTVerifier(jwks=RS256KeySet.from_jwks(json.dumps(jwks_doc)))
    both = JWTVerifier(hs256_key=hkey, jwks=RS256KeySet.from_jwks(json.dumps(jwks_doc)))
    for secret in secrets:
        tok = HS256Key(secret).sign(claims(), {"kid": "k1"})
        with pytest.raises(E.AlgorithmError):
            rs_only.verify(tok, now=NOW)
        with pytest.raises(E.SignatureError):
            both.verify(tok, now=NOW)
        # relabelled as RS256: the 32-byte MAC is no RSA signature
        h, c, s = tok.split(".")
        relabelled = f"{b64u(json.dumps({'alg': 'RS256', 'kid': 'k1', 'typ': 'JWT'}).encode())}.{c}.{s}"
        with pytest.raises(E.SignatureLengthError):
            both.verify(relabelled, now=NOW)


def test_rs256_kid_rules(rs_verifier, rsa_keys):
    with pytest.raises(E.KeyIdError, match="no kid"):
        rs_verifier.verify(rs(claims(), rsa_keys["k1"], kid=None), now=NOW)
    with pytest.raises(E.KeyIdError, match="'nope'"):
        rs_verifier.verify(rs(claims(), rsa_keys["k1"], kid="nope"), now=NOW)
    with pytest.raises(E.KeyIdError, match="not a string"):
        rs_verifier.verify(rs_raw({"alg": "RS256", "kid": 1}, claims(), rsa_keys["k1"]), now=NOW)
    # sanity: the same hand-made token with the right kid verifies
    assert rs_verifier.verify(rs_raw({"alg": "RS256", "kid": "k1"}, claims(), rsa_keys["k1"]), now=NOW)
    # kids of skipped keys are not usable
    for kid in ("hs", "ec", "rs512"):
        with pytest.raises(E.KeyIdError):
            rs_verifier.verify(rs(claims(), rsa_keys["k1"], kid=kid), now=NOW)
    # the right kid, but signed by another key
    with pytest.raises(E.SignatureError):
        rs_verifier.verify(rs(claims(), rsa_keys["k2"], kid="k1"), now=NOW)


def test_rs256_signature_shape(rs_verifier, rsa_keys):
    h, c, s = rs(claims(), rsa_keys["k1"]).split(".")
    with pytest.raises(E.SignatureLengthError):
        rs_verifier.verify(f"{h}.{c}.{b64u(unb64u(s)[:-1])}", now=NOW)
    with pytest.raises(E.SignatureLengthError):
        rs_verifier.verify(f"{h}.{c}.{b64u(unb64u(s) + b'x')}", now=NOW)
    with pytest.raises(E.Base64Error):
        rs_verifier.verify(f"{h}.{c}.{s[:-1]}+", now=NOW)


@pytest.mark.parametrize("drop", ["exp", "iat"])
def test_exp_and_iat_required(hs_verifier, rs_verifier, rsa_keys, drop):
    c = claims()
    del c[drop]
    for v, tok in ((hs_verifier, hs(c)), (rs_verifier, rs(c, rsa_keys["k1"]))):
        with pytest.raises(E.ClaimsError, match=f"'{drop}' is missing"):
            v.verify(tok, now=NOW)


@pytest.mark.parametrize("value", ["1900000000", 1.9e9, True, None, 2**63, [1]])
def test_exp_must_be_integer(hkey, hs_verifier, value):
    tok = hkey.sign_raw(b'{"alg":"HS256","typ":"JWT"}', json.dumps(claims(exp=0) | {"exp": value}).encode())
    # 2**63 is beyond jansson's int64: refused by the JSON reader itself, as libjwt does
    with pytest.raises(E.ClaimsError, match="'exp'|beyond int64"):
        hs_verifier.verify(tok, now=NOW)


def test_expired(hs_verifier, rs_verifier, rsa_keys):
    c = claims(exp=NOW - 1)
    for v, tok in ((hs_verifier, hs(c)), (rs_verifier, rs(c, rsa_keys["k1"]))):
        with pytest.raises(E.ExpiredError):
            v.verify(tok, now=NOW)


@pytest.mark.parametrize("c", [{"iat": 1, "exp": NOW}, {"iat": 1, "exp": NOW, "sun": 5},
                               {"iat": 1, "exp": NOW, "sun": None, "username": ["root"]}])
def test_missing_user(hs_verifier, c):
    with pytest.raises(E.UserClaimError, match="names no user"):
        hs_verifier.verify(hs(c), now=NOW)


@pytest.mark.parametrize("user", [""])
def test_invalid_user(hs_verifier, user):
    with pytest.raises(E.UserClaimError, match="not a valid user name"):
        hs_verifier.verify(hs(claims(user)), now=NOW)


def test_nul_in_user_refused_by_the_json_reader(hs_verifier):
    # jansson (so Slurm) refuses any \u0000 escape; jsonutil.loads_object does too.
    with pytest.raises(E.ClaimsError, match="u0000"):
        hs_verifier.verify(hs(claims("ro\x00ot")), now=NOW)


def test_unknown_user(hs_verifier):
    with pytest.raises(E.UnknownUserError) as ei:
        hs_verifier.verify(hs(claims(NO_SUCH_USER)), now=NOW)
    assert ei.value.slurm_errno == E.ESLURM_USER_ID_MISSING


def test_malformed_tokens(hs_verifier):
    good = hs(claims())
    h, c, s = good.split(".")
    with pytest.raises(E.SegmentError):
        hs_verifier.verify(f"{h}.{c}", now=NOW)
    with pytest.raises(E.SegmentError):
        hs_verifier.verify(f"{h}.{c}.{s}.x", now=NOW)
    with pytest.raises(E.SegmentError):
        hs_verifier.verify(f".{c}.{s}", now=NOW)
    with pytest.raises(E.Base64Error):
        hs_verifier.verify(f"{h}=.{c}.{s}", now=NOW)
    with pytest.raises(E.HeaderError):
        hs_verifier.verify(f"{b64u(b'[1]')}.{c}.{s}", now=NOW)
    with pytest.raises(E.HeaderError):
        hs_verifier.verify("é" + good, now=NOW)
    with pytest.raises(E.TokenTooLargeError):
        JWTVerifier(hs256_key=HS256Key(KEY), max_len=64).verify(good, now=NOW)
    with pytest.raises(E.BadArgumentError):
        hs_verifier.verify(12345, now=NOW)
    with pytest.raises(E.BadArgumentError):
        hs_verifier.verify(good, username=b"root", now=NOW)


def test_duplicate_claim_refused(hkey, hs_verifier):
    tok = hkey.sign_raw(b'{"alg":"HS256","typ":"JWT"}',
                        b'{"iat":1,"exp":%d,"sun":"daemon","sun":"root"}' % NOW)
    with pytest.raises(E.ClaimsError, match="duplicate"):
        hs_verifier.verify(tok, now=NOW)


def test_verifier_needs_a_key():
    with pytest.raises(E.BadArgumentError):
        JWTVerifier()


# --- the packed (wire) username -------------------------------------------------

def test_same_wire_username_is_redundant(hs_verifier):
    cred = hs_verifier.verify(hs(claims("daemon")), username="daemon", now=NOW)
    assert cred.acting_for is None and cred.uid == DAEMON.pw_uid


def test_root_token_acts_for_wire_user(hs_verifier):
    cred = hs_verifier.verify(hs(claims("root")), username="daemon", now=NOW)
    assert (cred.username, cred.acting_for, cred.effective_user) == ("root", "daemon", "daemon")
    assert (cred.uid, cred.gid) == (DAEMON.pw_uid, DAEMON.pw_gid)


def test_slurmuser_token_acts_for_wire_user(hkey):
    v = JWTVerifier(hs256_key=hkey, slurm_user_uid=DAEMON.pw_uid)
    cred = v.verify(hs(claims("daemon")), username="bin", now=NOW)
    assert (cred.acting_for, cred.uid) == ("bin", BIN.pw_uid)


def test_ordinary_user_may_not_act_for_another(hs_verifier, rs_verifier, rsa_keys):
    for v, tok in ((hs_verifier, hs(claims("daemon"))), (rs_verifier, rs(claims("daemon"), rsa_keys["k1"]))):
        with pytest.raises(E.AlternateUserError, match="only root or SlurmUser"):
            v.verify(tok, username="root", now=NOW)
    with pytest.raises(E.AlternateUserError):
        hs_verifier.verify(hs(claims("daemon")), username="", now=NOW)


def test_acting_for_unknown_users(hs_verifier):
    with pytest.raises(E.UnknownUserError):  # the token's user cannot be resolved
        hs_verifier.verify(hs(claims(NO_SUCH_USER)), username="root", now=NOW)
    with pytest.raises(E.UnknownUserError):  # nor can the packed user
        hs_verifier.verify(hs(claims("root")), username=NO_SUCH_USER, now=NOW)


# --- use_jwt_client_ids -----------------------------------------------------------

ALICE = Identity(name="alice", gecos="Alice", dir="/home/alice", shell="/bin/bash",
                 groups={"alice": 2001, "physics": 3000})


def id_claims(ident=ALICE, uid=2001, gid=2001, **extra):
    return claims(ident.name, uid=uid, gid=gid, id=ident.to_json(), **extra)


@pytest.fixture
def ids_verifier(hkey):
    return JWTVerifier(hs256_key=hkey, use_jwt_client_ids=True)


def test_client_ids_from_claims(ids_verifier, hs_verifier):
    cred = ids_verifier.verify(hs(id_claims()), now=NOW)
    assert (cred.username, cred.uid, cred.gid, cred.identity) == ("alice", 2001, 2001, ALICE)
    # the local database does not know alice: without client ids she is rejected
    with pytest.raises(E.UnknownUserError):
        hs_verifier.verify(hs(id_claims()), now=NOW)
    # "id" is optional; uid and gid alone are enough
    c = id_claims()
    del c["id"]
    assert ids_verifier.verify(hs(c), now=NOW).identity is None


def test_client_ids_from_libjwt_token(ids_verifier, libjwt):
    ident = identity_from_user(0)
    tok = libjwt.encode([("iat", NOW), ("exp", NOW + 1), ("sun", "root"), ("uid", 0), ("gid", 0)], key=KEY,
                        grants_json=json.dumps({"id": ident.to_json()}))
    assert ids_verifier.verify(tok, now=NOW).identity == ident


def test_client_ids_fall_back_to_local_users(ids_verifier, hkey):
    assert ids_verifier.verify(hs(claims("daemon")), now=NOW).uid == DAEMON.pw_uid
    only = JWTVerifier(hs256_key=hkey, use_jwt_client_ids_only=True)
    with pytest.raises(E.UnknownUserError, match="use_jwt_client_ids_only"):
        only.verify(hs(claims("daemon")), now=NOW)
    assert only.verify(hs(id_claims()), now=NOW).uid == 2001


def test_minted_client_ids_round_trip(hkey, libjwt):
    tok = slurm_jwt.create_token(hkey, "daemon", caller_uid=0, now=NOW, client_ids=True)
    ident = identity_from_user(DAEMON.pw_uid, DAEMON.pw_gid)
    c = {"exp": NOW + 1800, "gid": DAEMON.pw_gid, "iat": NOW, "id": ident.to_json(), "sun": "daemon",
         "uid": DAEMON.pw_uid}
    assert unb64u(tok.split(".")[1]) == json.dumps(c, sort_keys=True, separators=(",", ":")).encode()
    assert libjwt.decode(tok, KEY) == (0, c)
    only = JWTVerifier(hs256_key=hkey, use_jwt_client_ids_only=True)
    cred = only.verify(tok, now=NOW)
    assert (cred.uid, cred.gid, cred.identity) == (DAEMON.pw_uid, DAEMON.pw_gid, ident)
    with pytest.raises(E.TokenCreationError, match="client ids"):
        slurm_jwt.create_token(hkey, NO_SUCH_USER, caller_uid=0, client_ids=True)


@pytest.mark.parametrize("change, exc", [
    ({"gid": None}, E.ClaimsError),
    ({"uid": None}, E.ClaimsError),
    ({"uid": -1}, E.ClaimsError),
    ({"gid": 2**32}, E.ClaimsError),
    ({"uid": "2001"}, E.ClaimsError),
    ({"id": {"name": "alice"}}, E.IdentityError),
    ({"id": {"name": "alice", "gecos": "", "dir": "/", "shell": "/bin/sh", "gids": [1.5]}}, E.IdentityError),
    ({"id": "alice"}, E.IdentityError),
    ({"id": dict(ALICE.to_json(), name="root")}, E.ClaimsError),  # id of another user
])
def test_client_ids_rejections(ids_verifier, change, exc):
    c = id_claims()
    for k, v in change.items():
        if v is None:
            del c[k]
        else:
            c[k] = v
    with pytest.raises(exc):
        ids_verifier.verify(hs(c), now=NOW)


def test_client_ids_and_the_wire_username(hkey, ids_verifier):
    # alice (uid 2001 by her claims) may not act for root
    with pytest.raises(E.AlternateUserError):
        ids_verifier.verify(hs(id_claims()), username="root", now=NOW)
    # a SlurmUser token by its claims acts for a local user, who is looked up
    v = JWTVerifier(hs256_key=hkey, use_jwt_client_ids=True, slurm_user_uid=2001)
    cred = v.verify(hs(id_claims()), username="daemon", now=NOW)
    assert (cred.acting_for, cred.uid, cred.identity) == ("daemon", DAEMON.pw_uid, None)
    only = JWTVerifier(hs256_key=hkey, use_jwt_client_ids_only=True, slurm_user_uid=2001)
    with pytest.raises(E.UnknownUserError, match="packed user"):
        only.verify(hs(id_claims()), username="daemon", now=NOW)


# --- round trip ------------------------------------------------------------------

@given(user=st.sampled_from(["root", "daemon", "bin"]), lifespan=st.integers(1, 10**6),
       skew=st.integers(0, 10**6))
def test_round_trip(user, lifespan, skew):
    key = HS256Key(KEY)
    tok = slurm_jwt.create_token(key, user, lifespan=lifespan, caller_uid=0, now=NOW)
    v = JWTVerifier(hs256_key=key)
    if skew <= lifespan:
        cred = v.verify(tok, now=NOW + skew)
        assert (cred.username, cred.uid, cred.iat, cred.exp) == (user, pwd.getpwnam(user).pw_uid, NOW,
                                                                 NOW + lifespan)
    else:
        with pytest.raises(E.ExpiredError):
            v.verify(tok, now=NOW + skew)


@given(pos=st.integers(min_value=0), ch=st.sampled_from("AQgw_-.x="))
def test_any_single_change_is_rejected(pos, ch):
    key = HS256Key(KEY)
    tok = slurm_jwt.create_token(key, "root", caller_uid=0, now=NOW)
    i = pos % len(tok)
    mutated = tok[:i] + ch + tok[i + 1:]
    v = JWTVerifier(hs256_key=key)
    if mutated == tok:
        return
    try:
        cred = v.verify(mutated, now=NOW)
    except E.CredentialError:
        return
    pytest.fail(f"mutated token accepted: {cred}")


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3),
                           max_leaves=8)


def mostly(value, other=json_values):
    """Usually ``value`` (so that many examples get far into the checks), sometimes anything."""
    return st.one_of(st.just(value), st.just(value), st.just(value), other)


@given(header=st.fixed_dictionaries({"alg": mostly("HS256", st.sampled_from(["RS256", "none"]) | json_values)},
                                    optional={"typ": mostly("JWT"), "kid": json_values}),
       body=st.fixed_dictionaries({"exp": mostly(NOW), "iat": mostly(NOW), "sun": mostly("root")},
                                  optional={k: json_values | st.sampled_from(["root", "daemon", 0, 1])
                                            for k in ("username", "uid", "gid", "id", "email")}),
       wire=st.none() | st.sampled_from(["root", "daemon", ""]))
def test_signed_garbage_never_crashes(header, body, wire):
    """Whatever a key holder signs, the verifier answers with a credential or a
    SlurmAuthError subclass: never another exception."""
    tok = HS256Key(KEY).sign_raw(json.dumps(header).encode(), json.dumps(body).encode())
    for v in (JWTVerifier(hs256_key=HS256Key(KEY), use_jwt_client_ids=True, userclaimfield="email"),
              JWTVerifier(hs256_key=HS256Key(KEY))):
        try:
            cred = v.verify(tok, username=wire, now=NOW)
        except E.SlurmAuthError:
            continue
        assert header["alg"] == "HS256" and cred.exp >= NOW
        event("accepted")
