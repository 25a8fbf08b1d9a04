"""Attack corpus: every hostile token is rejected with its SPECIFIC exception class.

Cases live in tests/vectors/attacks_jws.json (HS256 compact JWS layer, driven
through ``HS256Key.verify``) and tests/vectors/attacks_slurm.json (auth/slurm
credentials through ``tokens.Verifier``: key selection by kid, expired keys,
claim types and ranges, ruid, context, payload) and tests/vectors/attacks_frames.json
(Slurm RPC frames through ``rpc.parse_frame`` / ``rpc.verify_rpc``: truncated,
concatenated, oversized, wrong version, bad packstr, body-hash binding). Where a case can carry a valid MAC (a malformed
encoding, a forbidden alg, duplicate keys), it does: the MAC is computed over
the exact bytes sent, so the rejection comes from the rule under test and not
from a tag mismatch.

The size limit is shown to come before any hashing without timing: a token
whose MAC is valid is refused one byte over the limit, and the C entry point
returns SA_E_TOO_LARGE even when handed no key at all (any hashing would
need the key and fail with SA_E_ARG first).
"""
import base64
import json
import re

import pytest

from conftest import load_vectors
from slurmauth_fast import DEFAULT_MAX_TOKEN, HS256Key
from slurmauth_fast import errors as E
from slurmauth_fast._bindings import ffi, lib

CORPUS = load_vectors("attacks_jws.json")
KEY = bytes.fromhex(CORPUS["key_hex"])
OTHER = bytes.fromhex(CORPUS["other_key_hex"])
_REPEAT = re.compile(r"\$\((\d+)\*([^)]*)\)")


def expand(text: str) -> str:
    return _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def segment(case: dict, part: str) -> bytes:
    if part + "_hex" in case:
        return bytes.fromhex(case[part + "_hex"])
    return expand(case[part]).encode("utf-8")


def build(case: dict) -> bytes:
    """The token bytes a case describes (see the corpus's "about")."""
    if "token" in case:
        return case["token"].encode("utf-8")
    if "segments" in case:
        signing_input = ".".join(case["segments"]).encode("utf-8")
    else:
        signing_input = f"{b64u(segment(case, 'header'))}.{b64u(segment(case, 'claims'))}".encode()
    key = OTHER if case.get("sig") == "other-key" else KEY
    tag = b64u(HS256Key(key).mac(signing_input))
    if case.get("sig") == "noncanonical":
        alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        tag = tag[:-1] + alpha[alpha.index(tag[-1]) | 1]
    tok = signing_input + b"." + tag.encode()
    if case.get("cut"):
        tok = tok[: -case["cut"]]
    if case.get("append"):
        tok += case["append"].encode()
    if case.get("concat"):
        tok += tok
    return tok


CASES = CORPUS["cases"]


@pytest.fixture(scope="module")
def key():
    return HS256Key(KEY)


def test_corpus_is_well_formed():
    names = [c["name"] for c in CASES]
    assert len(names) == len(set(names))
    for c in CASES:
        assert isinstance(getattr(E, c["expect"]), type), c["expect"]
        assert issubclass(getattr(E, c["expect"]), E.CredentialError)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_attack_rejected_with_specific_class(key, case):
    tok = build(case)
    max_len = len(tok) - 1 if case.get("max_len") == "len-1" else DEFAULT_MAX_TOKEN
    expected = getattr(E, case["expect"])
    with pytest.raises(E.SlurmAuthError) as info:
        key.verify(tok, max_len=max_len)
    assert type(info.value) is expected, f"{case['name']}: got {type(info.value).__name__}: {info.value}"
    assert info.value.slurm_errno == E.ESLURM_AUTH_CRED_INVALID
    # str tokens take the same path (non-ASCII ones stop at the ASCII check)
    if all(b < 0x80 for b in tok):
        with pytest.raises(expected):
            key.verify(tok.decode("ascii"), max_len=max_len)


def test_valid_mac_cases_really_have_a_valid_mac(key):
    """The corpus's point: these are rejected by the rule, not by the tag. Remove
    the one flaw (re-sign canonical bytes) and the same content verifies."""
    c = next(c for c in CASES if c["name"] == "alg 'HS512'")
    hdr = json.loads(c["header"])
    hdr["alg"] = "HS256"
    good = key.sign_raw(json.dumps(hdr, separators=(",", ":")).encode(), c["claims"].encode())
    assert key.verify(good).claims["uid"] == 1000
    tok = build(next(c for c in CASES if c.get("max_len") == "len-1"))
    assert key.verify(tok, max_len=len(tok)).claims["uid"] == 1000


def test_size_limit_applies_before_any_hashing():
    tok = build(next(c for c in CASES if c.get("max_len") == "len-1"))
    out = ffi.new("uint8_t[]", len(tok))
    lens = ffi.new("size_t[2]")
    # No key at all (NULL): hashing would fail with SA_E_ARG, so TOO_LARGE proves none happened.
    assert lib.sa_jws_hs256_verify(ffi.NULL, tok, len(tok), len(tok) - 1,
                                   out, len(tok), lens, out, len(tok), lens + 1) == lib.SA_E_TOO_LARGE
    assert lib.sa_jws_hs256_verify(ffi.NULL, tok, len(tok), len(tok),
                                   out, len(tok), lens, out, len(tok), lens + 1) == lib.SA_E_ARG
    # A wiped key context is no better: the limit still answers first.
    k = HS256Key(KEY)
    ctx = k.cdata
    k.close()
    assert lib.sa_jws_hs256_verify(ctx, tok, len(tok), len(tok) - 1,
                                   out, len(tok), lens, out, len(tok), lens + 1) == lib.SA_E_TOO_LARGE


def test_escaped_nul_rule_has_no_false_positive(key):
    """An escaped backslash followed by u0000 is the 6-character text, not a NUL."""
    tok = key.sign_raw(b'{"alg":"HS256"}', b'{"host":"a\\\\u0000b"}')
    assert key.verify(tok).claims["host"] == "a\\u0000b"
    tok = key.sign_raw(b'{"alg":"HS256"}', b'{"host":"\\ud83d\\ude00"}')  # a valid surrogate pair
    assert key.verify(tok).claims["host"] == "\U0001F600"


@pytest.mark.parametrize("claims", [
    {"host": "login01\x00evil"},          # NUL: Slurm's reader would refuse it; so does ours
    {"a\x00": 1},                         # NUL in a key
    {"host": "\ud800"},                   # unpaired surrogate: not encodable as UTF-8
    {"x": float("nan")},                  # not JSON
    {"x": {1, 2}},                        # not JSON at all (was TypeError)
    {"x": b"bytes"},                      # not JSON at all (was TypeError)
], ids=["nul-value", "nul-key", "surrogate", "nan", "set", "bytes"])
def test_signing_refuses_what_verification_would(key, claims):
    """Regression: sign() let TypeError/UnicodeEncodeError escape and signed NUL strings
    that Slurm cannot read; now one BadArgumentError, symmetric with verify()."""
    with pytest.raises(E.BadArgumentError):
        key.sign(claims)


# --- the auth/slurm credential layer (tests/vectors/attacks_slurm.json) -------------

SLURM = load_vectors("attacks_slurm.json")
SLURM_CASES = SLURM["cases"]


def _slurm_secret(kid):
    k = next(k for k in SLURM["jwks"]["keys"] if k["kid"] == kid)["k"]
    return base64.urlsafe_b64decode(k + "=" * (-len(k) % 4))


def _json_text(obj_or_raw) -> bytes:
    return expand(obj_or_raw).encode() if isinstance(obj_or_raw, str) else \
        expand(json.dumps(obj_or_raw, separators=(",", ":"), sort_keys=True)).encode()


def build_credential(case: dict) -> bytes:
    """The token bytes an attacks_slurm.json case describes (see its "about")."""
    header = _json_text(case.get("header_raw", case.get("header", SLURM["base_header"])))
    if "claims_raw" in case:
        claims = _json_text(case["claims_raw"])
    else:
        values = {k: json.dumps(v, separators=(",", ":")).encode() for k, v in SLURM["base_claims"].items()}
        values.update({k: json.dumps(v, separators=(",", ":")).encode() for k, v in case.get("set", {}).items()})
        values.update({k: expand(v).encode() for k, v in case.get("set_raw", {}).items()})
        values.update({k: bytes.fromhex(v) for k, v in case.get("set_raw_hex", {}).items()})
        for k in case.get("unset", []):
            del values[k]
        claims = b"{" + b",".join(json.dumps(k).encode() + b":" + values[k] for k in sorted(values)) + b"}"
    tok = HS256Key(_slurm_secret(case.get("sign_with", "k-current"))).sign_raw(header, claims).encode()
    if case.get("cut"):
        tok = tok[: -case["cut"]]
    if case.get("concat"):
        tok += tok
    return tok


@pytest.fixture(scope="module")
def slurm_verifier():
    from slurmauth_fast import tokens
    from slurmauth_fast.keys import Keyring
    return tokens, Keyring.from_jwks(json.dumps(SLURM["jwks"]))


def test_slurm_corpus_base_token_verifies(slurm_verifier):
    """The control: without a flaw the same construction verifies."""
    tokens, keyring = slurm_verifier
    cred = tokens.Verifier(keyring, verifier_uid=SLURM["verifier_uid"]).verify(
        build_credential({}), now=SLURM["now"])
    assert (cred.uid, cred.gid, cred.kid, cred.payload) == (1000, 1000, "k-current", b"\x01\x03\xf0")


def test_slurm_size_limit_applies_before_any_hashing(slurm_verifier):
    """sc_verify (the Verifier's one C call) with a key set whose key is absent:
    over the limit it answers SA_E_TOO_LARGE; at the limit it gets as far as the
    tag check and fails there for want of a key (SA_E_ARG) -- so the refusal
    over the limit happened before any hashing."""
    tok = build_credential({})
    sk = ffi.new("sc_key *")               # kid NULL, key NULL: no key material at all
    ks = ffi.new("sc_keyset *", {"keys": sk, "nkeys": 1, "default_index": 0, "by_kid": 0})
    scratch = ffi.new("uint8_t[]", lib.sc_scratch_need(len(tok)))
    for max_len, want in ((len(tok) - 1, lib.SA_E_TOO_LARGE), (len(tok), lib.SA_E_ARG)):
        pol = ffi.new("sc_policy *", {"max_len": max_len, "verifier_uid": 1000, "contexts": 1})
        assert lib.sc_verify(ks, pol, tok, len(tok), SLURM["now"], scratch, len(scratch)) == want


@pytest.mark.parametrize("case", SLURM_CASES, ids=[c["name"] for c in SLURM_CASES])
def test_slurm_attack_rejected_with_specific_class(slurm_verifier, case):
    tokens, keyring = slurm_verifier
    tok = build_credential(case)
    max_len = len(tok) - 1 if case.get("max_len") == "len-1" else DEFAULT_MAX_TOKEN
    v = tokens.Verifier(keyring, verifier_uid=SLURM["verifier_uid"], max_len=max_len)
    expected = getattr(E, case["expect"])
    with pytest.raises(E.SlurmAuthError) as info:
        v.verify(tok, now=SLURM["now"])
    assert type(info.value) is expected, f"{case['name']}: got {type(info.value).__name__}: {info.value}"
    assert info.value.slurm_errno == E.ESLURM_AUTH_CRED_INVALID
    # the batch API gives the same answer, as a value
    (got,) = v.verify_batch([tok], now=SLURM["now"])
    assert type(got) is expected


# --- Slurm RPC frames (tests/vectors/attacks_frames.json) ---------------------------

FRAMES = load_vectors("attacks_frames.json")
FRAME_CASES = FRAMES["cases"]
FRAME_KEY = b"frame attack corpus key, 32 bytes"
# Header offsets with the length prefix, no forward, AF_UNSPEC orig_addr (checked below).
FIELDS = {"total_len": (0, 4), "version": (4, 2), "flags": (6, 2), "msg_type": (8, 2),
          "body_length": (10, 4), "forward_cnt": (14, 2), "ret_cnt": (16, 2), "plugin": (20, 4),
          "cred_len": (24, 4)}


def frame_for(**kw) -> bytes:
    """The base RPC (or a variant): REQUEST_PING-like body bound by a K12 payload."""
    from slurmauth_fast import rpc
    from slurmauth_fast.keys import Keyring
    from slurmauth_fast.tokens import create_credential

    body = bytes.fromhex(kw.get("body_hex", FRAMES["body_hex"]))
    msg_type = FRAMES["msg_type"]
    # the credential always binds the ORIGINAL body: "body_hex" replays it onto another one
    payload = rpc.body_hash_payload(bytes.fromhex(FRAMES["body_hex"]), msg_type, kw.get("hash", rpc.HASH_K12))
    if "payload" in kw:
        payload = kw["payload"]
    exp = kw.get("exp", FRAMES["now"] + 55)
    token = create_credential(Keyring.from_key_bytes(FRAME_KEY), uid=1000, gid=1000, host="n1",
                              ruid=kw.get("ruid", FRAMES["verifier_uid"]), payload=payload,
                              ttl=60, now=exp - 60)
    if kw.get("no_auth"):
        return rpc.pack_frame(msg_type, body, flags=rpc.NO_AUTH_CRED)
    return rpc.pack_frame(msg_type, body, credential=token, plugin=kw.get("plugin", rpc.AUTH_SLURM))


def mutate(frame: bytes, ops) -> bytes:
    b = bytearray(frame)
    for op, *args in ops:
        if op == "cut":
            del b[len(b) - args[0]:]
        elif op == "keep":
            del b[args[0]:]
        elif op == "concat":
            b += frame
        elif op == "append_hex":
            b += bytes.fromhex(args[0])
        elif op in ("u16", "u32", "add32"):
            off, n = FIELDS[args[0]]
            cur = int.from_bytes(b[off:off + n], "big")
            val = cur + args[1] if op == "add32" else args[1]
            b[off:off + n] = val.to_bytes(n, "big")
        elif op == "fix_total":
            b[0:4] = (len(b) - 4).to_bytes(4, "big")
        elif op == "cred_last":
            cred_end = 28 + int.from_bytes(b[24:28], "big")
            b[cred_end - 1:cred_end] = bytes.fromhex(args[0])
        elif op == "body_xor":
            b[len(b) - len(bytes.fromhex(FRAMES["body_hex"])) + args[0]] ^= args[1]
        elif op == "rebuild":
            b = bytearray(frame_for(**args[0]))
        else:  # pragma: no cover - corpus typo
            raise AssertionError(f"unknown op {op}")
    return bytes(b)


@pytest.fixture(scope="module")
def wire():
    from slurmauth_fast import rpc
    from slurmauth_fast.keys import Keyring
    from slurmauth_fast.tokens import Verifier
    return rpc, Verifier(Keyring.from_key_bytes(FRAME_KEY), verifier_uid=FRAMES["verifier_uid"])


def test_frame_corpus_base_frame_verifies_and_layout_holds(wire):
    rpc, verifier = wire
    base = frame_for()
    f = rpc.parse_frame(base)
    assert (f.version, f.msg_type, f.ret_cnt, f.auth_plugin) == (0x2D00, FRAMES["msg_type"], 0, rpc.AUTH_SLURM)
    assert int.from_bytes(base[FIELDS["version"][0]:][:2], "big") == f.version
    assert int.from_bytes(base[24:28], "big") == len(f.auth_cred) + 1   # packstr length counts the NUL
    got = rpc.verify_rpc(base, verifier, now=FRAMES["now"])
    assert bytes(got.frame.body) == bytes.fromhex(FRAMES["body_hex"]) and got.credential.uid == 1000


@pytest.mark.parametrize("case", FRAME_CASES, ids=[c["name"] for c in FRAME_CASES])
def test_frame_attack_rejected_with_specific_class(wire, case):
    rpc, verifier = wire
    data = mutate(frame_for(), case["ops"])
    expected = getattr(E, case["expect"])
    with pytest.raises(E.SlurmAuthError) as info:
        if case["layer"] == "parse":
            rpc.parse_frame(data)
        else:
            rpc.verify_rpc(data, verifier, now=FRAMES["now"], **case.get("policy", {}))
    assert type(info.value) is expected, f"{case['name']}: got {type(info.value).__name__}: {info.value}"
