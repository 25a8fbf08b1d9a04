"""slurm.key / slurm.jwks loading with every rule of Slurm's loader, env
overrides and precedence, the permission check, reload and key hygiene."""
import base64
import hashlib
import hmac
import json
import logging
import os

import pytest
from hypothesis import assume, given, settings, strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast import keys as keys_mod
from slurmauth_fast.keys import MIN_JWKS_KEY_BYTES, Keyring, SlurmKey


def mac(key_bytes, msg=b"message"):
    return hmac.new(key_bytes, msg, hashlib.sha256).digest()


def enc(b, style):
    if style == "b64":
        return base64.b64encode(b).decode()
    if style == "b64-nopad":
        return base64.b64encode(b).decode().rstrip("=")
    if style == "url":
        return base64.urlsafe_b64encode(b).decode()
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def jwk(kid, secret, **extra):
    d = {"kid": kid, "kty": "oct", "alg": "HS256", "k": enc(secret, "url-nopad")}
    d.update(extra)
    return d


S1, S2, S3 = b"1" * 32, b"2" * 20, bytes(range(16))


# ---- jwks rules -------------------------------------------------------------------

def test_jwks_basic():
    ring = Keyring.from_jwks(json.dumps({"keys": [jwk("a", S1), jwk("b", S2, use="default", exp=99),
                                                  jwk("c", S3)]}))
    assert ring.is_jwks and [k.kid for k in ring.keys] == ["a", "b", "c"]
    assert ring.default_key().kid == "b" and ring.default_key().default
    assert not ring.lookup("a").default and ring.lookup("b").exp == 99
    assert ring.lookup("c").key.mac(b"message") == mac(S3)
    assert ring.lookup(None).kid == "b"
    with pytest.raises(E.KeyIdError):
        ring.lookup("A")


def test_first_key_default_without_use():
    ring = Keyring.from_jwks(json.dumps({"keys": [jwk("x", S2), jwk("y", S1, use="enc")]}).encode())
    assert ring.default_key().kid == "x" and ring.default_key().default


def test_case_insensitive_alg_kty_use():
    ring = Keyring.from_jwks(json.dumps({"keys": [jwk("x", S1, alg="hs256", kty="OCT"),
                                                  jwk("y", S1, use="DEFAULT")]}))
    assert ring.default_key().kid == "y"


@pytest.mark.parametrize("style", ["b64", "b64-nopad", "url", "url-nopad"])
def test_k_encodings(style):
    secret = b"\xfb\xff\xfe" * 7  # exercises + / - _
    ring = Keyring.from_jwks(json.dumps({"keys": [dict(jwk("x", secret), k=enc(secret, style))]}))
    assert ring.default_key().key.mac(b"message") == mac(secret)


def test_exp_forms():
    ring = Keyring.from_jwks(json.dumps({"keys": [jwk("a", S1, exp="1700000000"), jwk("b", S1, exp=0)]}))
    assert ring.lookup("a").exp == 1700000000 and ring.lookup("b").exp is None


@pytest.mark.parametrize("doc, words", [
    ("[]", "not a JSON object"),
    ("{}", "keys"),
    ('{"keys": {}}', "not a list"),
    ('{"keys": []}', "empty"),
    ('{"keys": [1]}', "key #0"),
    ("{", "not valid JSON"),
    ('{"keys": [], "keys": []}', "duplicate"),
])
def test_jwks_document_errors(doc, words):
    with pytest.raises(E.JWKSError) as e:
        Keyring.from_jwks(doc, "/etc/slurm/slurm.jwks")
    assert "/etc/slurm/slurm.jwks" in str(e.value) and words in str(e.value)


BREAKS = {
    "kid-missing": (lambda k, o: k.pop("kid"), "kid"),
    "kid-type": (lambda k, o: k.update(kid=5), "kid"),
    "kid-dup": (lambda k, o: k.update(kid=o["kid"]), "unique"),
    "kid-nul": (lambda k, o: k.update(kid="a\x00b"), "NUL"),
    "kty-missing": (lambda k, o: k.pop("kty"), "kty"),
    "kty-wrong": (lambda k, o: k.update(kty="RSA"), "kty field must be oct"),
    "kty-type": (lambda k, o: k.update(kty=["oct"]), "kty"),
    "alg-missing": (lambda k, o: k.pop("alg"), "alg"),
    "alg-wrong": (lambda k, o: k.update(alg="HS384"), "alg field must be HS256"),
    "alg-none": (lambda k, o: k.update(alg="none"), "alg field must be HS256"),
    "k-missing": (lambda k, o: k.pop("k"), "key field k"),
    "k-short": (lambda k, o: k.update(k=enc(b"x" * 15, "b64")), "entropy"),
    "k-chars": (lambda k, o: k.update(k="abc$def" * 4), "base64"),
    "k-length": (lambda k, o: k.update(k="A" * 25), "base64"),
    "k-type": (lambda k, o: k.update(k=123), "key field k"),
    "two-defaults": (lambda k, o: (k.update(use="default"), o.update(use="default")), "multiple default"),
    "exp-float": (lambda k, o: k.update(exp=1.5), "exp"),
    "exp-bool": (lambda k, o: k.update(exp=True), "exp"),
    "exp-text": (lambda k, o: k.update(exp="soon"), "exp"),
}


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_rule_breach(rule):
    keys = [jwk("first", S1), jwk("second", S2)]
    mutate, words = BREAKS[rule]
    mutate(keys[1], keys[0])
    with pytest.raises(E.JWKSError) as e:
        Keyring.from_jwks(json.dumps({"keys": keys}), "my.jwks")
    msg = str(e.value)
    assert "my.jwks" in msg and words in msg
    if rule == "kid-nul":  # the \u0000 escape is refused by the JSON reader, before any key rule (as jansson does)
        return
    assert "key #1" in msg  # names the key (index, and kid when it has one)
    if rule not in ("kid-missing", "kid-type", "kid-nul"):
        assert "'first'" in msg or "'second'" in msg


def test_min_key_length_is_inclusive():
    Keyring.from_jwks(json.dumps({"keys": [jwk("x", b"y" * MIN_JWKS_KEY_BYTES)]}))


kids = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               min_size=1, max_size=8)


@st.composite
def valid_jwks(draw):
    n = draw(st.integers(1, 4))
    kid_list = draw(st.lists(kids, min_size=n, max_size=n, unique=True))
    default = draw(st.none() | st.integers(0, n - 1))
    entries, secrets = [], []
    for i, kid in enumerate(kid_list):
        secret = draw(st.binary(min_size=16, max_size=64))
        secrets.append(secret)
        e = {"kid": kid, "kty": draw(st.sampled_from(["oct", "OCT", "Oct"])),
             "alg": draw(st.sampled_from(["HS256", "hs256", "Hs256"])),
             "k": enc(secret, draw(st.sampled_from(["b64", "b64-nopad", "url", "url-nopad"])))}
        if default == i:
            e["use"] = draw(st.sampled_from(["default", "DEFAULT"]))
        elif draw(st.booleans()):
            e["use"] = draw(st.sampled_from(["sig", "enc", 7]))
        if draw(st.booleans()):
            e["exp"] = draw(st.integers(0, 2 ** 40))
        if draw(st.booleans()):
            e["x-extra"] = draw(st.integers(-(2 ** 63), 2 ** 63 - 1))   # jansson's json_int_t
        entries.append(e)
    return entries, secrets, default


@settings(max_examples=80)
@given(valid_jwks())
def test_hypothesis_valid_jwks_loads(case):
    entries, secrets, default = case
    ring = Keyring.from_jwks(json.dumps({"keys": entries}))
    assert [k.kid for k in ring.keys] == [e["kid"] for e in entries]
    assert ring.default_key().kid == entries[default or 0]["kid"]
    assert sum(k.default for k in ring.keys) == 1
    for e, secret in zip(entries, secrets):
        k = ring.lookup(e["kid"])
        assert k.key.mac(b"message") == mac(secret)
        assert k.exp == (e.get("exp") or None)


@settings(max_examples=80)
@given(valid_jwks(), st.sampled_from(sorted(BREAKS)), st.data())
def test_hypothesis_single_breach_rejected(case, rule, data):
    entries, _, _ = case
    assume(len(entries) >= 2 or rule not in ("kid-dup", "two-defaults"))
    i = data.draw(st.integers(0, len(entries) - 1))
    j = data.draw(st.integers(0, len(entries) - 1).filter(lambda x: x != i)) if len(entries) >= 2 else i
    if rule == "two-defaults":
        for e in entries:
            e.pop("use", None)
    mutate, words = BREAKS[rule]
    mutate(entries[i], entries[j])
    with pytest.raises(E.JWKSError) as e:
        Keyring.from_jwks(json.dumps({"keys": entries}), "h.jwks")
    assert words in str(e.value) and "h.jwks" in str(e.value)


# ---- files, env, precedence, permissions --------------------------------------------

def write(path, data, mode=0o600):
    data = data.encode() if isinstance(data, str) else data
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return str(path)


def jwks_text(*entries):
    return json.dumps({"keys": list(entries)})


def test_slurm_key_file(tmp_path):
    write(tmp_path / "slurm.key", S1)
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    assert not ring.is_jwks and ring.default_key().kid is None
    assert ring.default_key().key.mac(b"message") == mac(S1)
    assert ring.source == str(tmp_path / "slurm.key")


def test_jwks_takes_precedence(tmp_path):
    write(tmp_path / "slurm.key", S1)
    write(tmp_path / "slurm.jwks", jwks_text(jwk("j", S2)))
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    assert ring.is_jwks and ring.default_key().kid == "j"


def test_env_overrides(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    write(conf / "slurm.key", S1)
    alt_key = write(tmp_path / "alt.key", S3)
    ring = Keyring.load(conf_dir=str(conf), env={"SLURM_SACK_KEY": alt_key})
    assert ring.default_key().key.mac(b"message") == mac(S3)
    alt_jwks = write(tmp_path / "alt.jwks", jwks_text(jwk("alt", S2)))
    ring = Keyring.load(conf_dir=str(conf), env={"SLURM_SACK_JWKS": alt_jwks})
    assert ring.default_key().kid == "alt"
    # a SLURM_SACK_JWKS naming a file that does not exist: back to slurm.key
    ring = Keyring.load(conf_dir=str(conf), env={"SLURM_SACK_JWKS": str(tmp_path / "nope")})
    assert not ring.is_jwks
    # explicit arguments win over the environment
    ring = Keyring.load(key_path=str(conf / "slurm.key"), jwks_path=str(tmp_path / "nope"),
                        env={"SLURM_SACK_KEY": alt_key})
    assert ring.default_key().key.mac(b"message") == mac(S1)


def test_conf_dir_from_slurm_conf(tmp_path):
    write(tmp_path / "slurm.key", S2)
    ring = Keyring.load(env={"SLURM_CONF": str(tmp_path / "slurm.conf")})
    assert ring.default_key().key.mac(b"message") == mac(S2)


def test_missing_and_empty(tmp_path):
    with pytest.raises(E.KeyFileError) as e:
        Keyring.load(conf_dir=str(tmp_path), env={})
    assert "slurm.key" in str(e.value)
    write(tmp_path / "slurm.key", b"")
    with pytest.raises(E.KeyFileError):
        Keyring.load(conf_dir=str(tmp_path), env={})


@pytest.mark.parametrize("name", ["slurm.key", "slurm.jwks"])
@pytest.mark.parametrize("mode", [0o604, 0o602, 0o601, 0o666])
def test_permission_refused(tmp_path, name, mode):
    data = S1 if name == "slurm.key" else jwks_text(jwk("a", S1))
    path = write(tmp_path / name, data, mode)
    with pytest.raises(E.KeyPermissionError) as e:
        Keyring.load(conf_dir=str(tmp_path), env={})
    assert path in str(e.value)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o400, 0o660])
def test_permission_accepted(tmp_path, mode):
    write(tmp_path / "slurm.jwks", jwks_text(jwk("a", S1)), mode)
    assert Keyring.load(conf_dir=str(tmp_path), env={}).default_key().kid == "a"


def test_owner_warning(tmp_path, caplog):
    path = write(tmp_path / "slurm.key", S1)
    if os.geteuid() == 0:
        os.chown(path, 12345, -1)
        slurm_user = 999
    else:
        slurm_user = os.geteuid() + 1
    with caplog.at_level(logging.WARNING, logger="slurmauth_fast.keys"):
        Keyring.load(conf_dir=str(tmp_path), env={}, slurm_user_uid=slurm_user)
    assert any("owned by uid" in r.getMessage() and path in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="slurmauth_fast.keys"):
        Keyring.load(conf_dir=str(tmp_path), env={}, slurm_user_uid=os.stat(path).st_uid)
    assert not caplog.records


# ---- reload ------------------------------------------------------------------------

def test_reload_swaps_and_keeps_old_on_error(tmp_path):
    jp = tmp_path / "slurm.jwks"
    write(jp, jwks_text(jwk("old", S1)))
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    write(jp, jwks_text(jwk("new", S2)))
    ring.reload()
    assert [k.kid for k in ring.keys] == ["new"]
    write(jp, jwks_text(jwk("bad", b"short")))
    with pytest.raises(E.JWKSError):
        ring.reload()
    assert [k.kid for k in ring.keys] == ["new"]
    os.unlink(jp)
    write(tmp_path / "slurm.key", S3)
    ring.reload()  # jwks gone: slurm.key, as at start-up
    assert not ring.is_jwks and ring.default_key().key.mac(b"message") == mac(S3)


def test_reload_needs_files():
    with pytest.raises(E.BadArgumentError):
        Keyring.from_key_bytes(S1).reload()


def test_replace_with():
    ring = Keyring.from_key_bytes(S1)
    ring.replace_with(Keyring.from_jwks(jwks_text(jwk("z", S2))))
    assert ring.default_key().kid == "z"


# ---- hygiene -------------------------------------------------------------------------

def test_no_secret_in_repr():
    secret = b"S3cr3tS3cr3tS3cr3t!!"
    ring = Keyring.from_jwks(jwks_text(jwk("a", secret)))
    texts = [repr(ring), repr(ring.default_key()), repr(ring.keys), str(ring.default_key())]
    for t in texts:
        for form in (secret, base64.b64encode(secret), base64.urlsafe_b64encode(secret).rstrip(b"=")):
            assert form.decode("latin1") not in t
        assert secret.hex() not in t
    assert "kid='a'" in repr(ring.default_key())


def test_read_bytes_are_wiped(tmp_path, monkeypatch):
    seen = []
    real = keys_mod.wipe

    def recording_wipe(buf):
        seen.append(buf)
        real(buf)

    monkeypatch.setattr(keys_mod, "wipe", recording_wipe)
    write(tmp_path / "slurm.jwks", jwks_text(jwk("a", S1), jwk("b", S2)))
    Keyring.load(conf_dir=str(tmp_path), env={})
    os.unlink(tmp_path / "slurm.jwks")
    write(tmp_path / "slurm.key", S3)
    Keyring.load(conf_dir=str(tmp_path), env={})
    Keyring.from_key_bytes(bytearray(S1))
    # the file contents and every decoded key were handed to wipe() and are zero now
    assert len(seen) >= 5
    assert all(isinstance(b, bytearray) and not any(b) for b in seen)


def test_slurm_key_dataclass_fields():
    k = Keyring.from_key_bytes(S1).default_key()
    assert isinstance(k, SlurmKey) and (k.kid, k.exp, k.default) == (None, None, True)
