#!/usr/bin/env python3
"""atheris harness over the Python API: whatever the bytes, only
:class:`slurmauth_fast.errors.SlurmAuthError` subclasses may escape.

Each input is routed (first byte) to one target:

- ``HS256Key.verify`` on the raw bytes as a token (shape, base64url, tag);
- ``HS256Key.verify`` on a token *correctly signed* over fuzzed header and
  claims bytes, so the JSON parsing and alg check behind the MAC are reached
  (a differential: verify's fast claims path -- C pre-scan, ``json``'s scanner --
  gives what the strict reader gives, the same dict with the same types, or
  refuses when it refuses);
- ``jsonutil.loads_object`` on the raw bytes;
- ``HS256Key.sign`` then ``verify`` of claims holding fuzzed text: sign refuses
  with BadArgumentError or the claims come back unchanged;
- the auth/jwt ``JWTVerifier`` on correctly signed claims;
- the SACK kiosk's request-body decoders;
- the auth/slurm ``Verifier`` on raw bytes and on correctly signed claims
  (a differential: what the C claims scanner accepts, the strict JSON reader
  must accept with the same values);
- whole RPCs: ``rpc.parse_frame`` then ``rpc.verify_rpc``;
- correctly signed claims through ``Verifier.verify``, ``verify_many`` (its status and uid
  columns and its answer) and ``verify_rpc`` on the token in a REQUEST_PING, with and without
  use_client_ids: the three must decide alike (a differential: batch = single = frame).

Any other exception (TypeError, KeyError, RecursionError, OverflowError, ...)
propagates and atheris reports it as a crash with the input saved.

Run through ``fuzz/run.sh`` (or directly with libFuzzer flags:
``python fuzz/py_fuzz.py -max_total_time=60 corpus_dir``).
"""
from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["slurmauth_fast"]):
    from slurmauth_fast import HS256Key
    from slurmauth_fast.errors import (BadArgumentError, BodyHashError, ClaimsError, HeaderError,
                                       SlurmAuthError)
    from slurmauth_fast.jsonutil import loads_object
    from slurmauth_fast.jwt import JWTVerifier
    from slurmauth_fast.keys import Keyring
    from slurmauth_fast.rpc import pack_frame, parse_frame, verify_rpc
    from slurmauth_fast.sack import decode_create_body, decode_verify_body
    from slurmauth_fast.tokens import Verifier

#: Must match FUZZ_KEY in fuzz_common.h so the seed corpus is shared.
FUZZ_KEY = b"slurmauth-fast fuzzing key, 32+ bytes long"
KEY = HS256Key(FUZZ_KEY)
NOW = 1764000030
JWT_VERIFIER = JWTVerifier(hs256_key=KEY, use_jwt_client_ids=True)
VERIFIER = Verifier(Keyring.from_key_bytes(FUZZ_KEY), verifier_uid=1000, max_len=16384)
ID_VERIFIER = Verifier(Keyring.from_key_bytes(FUZZ_KEY), verifier_uid=1000, max_len=16384,
                       use_client_ids=True)


def _target_token_raw(data: bytes) -> None:
    KEY.verify(data, max_len=16384)


def _target_token_signed(data: bytes) -> None:
    """First byte: header length - 1; then header bytes, then claims bytes."""
    if len(data) < 3:
        return
    n = 1 + data[0]
    hdr, claims = data[1:1 + n], data[1 + n:]
    if not claims:
        return
    tok = KEY.sign_raw(hdr, claims)
    try:
        got = KEY.verify(tok).claims
    except ClaimsError:         # the header passed, the claims were refused: strictly too
        try:
            loads_object(claims, ClaimsError, "claims")
        except ClaimsError:
            pass
        else:
            raise AssertionError(f"verify refused claims the strict reader takes: {claims!r}")
    except SlurmAuthError:
        pass  # the credential verifier sees the same token whatever the JWS layer said
    else:
        want = loads_object(claims, ClaimsError, "claims")
        if not _same_json(got, want):
            raise AssertionError(f"verify read {claims!r} as {got!r}, the strict reader as {want!r}")
    VERIFIER.verify(tok, now=NOW)


def _same_json(a: object, b: object) -> bool:
    """== with the same type at every level (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    return a == b


def _target_json(data: bytes) -> None:
    loads_object(data, HeaderError, "fuzz")


def _target_credential_raw(data: bytes) -> None:
    VERIFIER.verify(data, now=NOW)


def _nested_duplicates_only(claims: bytes, refusal: SlurmAuthError) -> dict:
    """The claims the C verifier accepted and the strict reader refused: acceptable only when
    the refusal is a duplicate key inside a value the verifier skips (an unknown claim, or
    "id" without use_client_ids), which the scanner checks for syntax alone, as jansson
    (which keeps the last of duplicate keys) does. Members at the top are unique."""
    if "duplicate key" not in str(refusal):
        raise AssertionError(f"C verifier accepted claims the JSON reader refuses: {refusal}")
    pairs = json.loads(claims.decode("utf-8"), object_pairs_hook=lambda p: p)
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise AssertionError(f"C verifier accepted a duplicate top-level claim: {refusal}")
    return dict(pairs)


def _target_credential_claims(data: bytes) -> None:
    """Claims JSON signed under a valid Slurm header: reaches the C claims scanner.
    Differential: whatever the C scanner accepts, the strict Python JSON reader
    must accept too, with the same values."""
    claims = data or b"{}"
    cred = VERIFIER.verify(KEY.sign_raw(b'{"alg":"HS256","typ":"JWT"}', claims), now=NOW)
    try:
        obj = loads_object(claims, HeaderError, "claims")
    except SlurmAuthError as e:
        obj = _nested_duplicates_only(claims, e)
    got = (cred.uid, cred.gid, cred.exp, cred.iat, cred.ruid, cred.context, cred.host)
    want = tuple(obj.get(k) for k in ("uid", "gid", "exp", "iat", "ruid", "context", "host"))
    if got != want:
        raise AssertionError(f"C verifier and JSON reader disagree: {got!r} != {want!r}")


def _outcome(fn):
    try:
        return fn()
    except SlurmAuthError as e:
        return e


def _target_single_batch_frame(data: bytes) -> None:
    """Signed claims through verify, verify_many (columns and answer) and verify_rpc (the
    token in a REQUEST_PING): every path decides the same, with and without
    use_client_ids."""
    tok = KEY.sign_raw(b'{"alg":"HS256","typ":"JWT"}', data or b"{}")
    frame = pack_frame(1008, b"", credential=tok)
    for v in (VERIFIER, ID_VERIFIER):
        single = _outcome(lambda: v.verify(tok, now=NOW))
        with v.verify_many([tok], now=NOW) as batch:
            status, uid, answer = batch.status[0], batch.uid[0], batch[0]
        if isinstance(single, SlurmAuthError):
            if status == 0 or type(answer) is not type(single):
                raise AssertionError(f"verify refused ({single!r}), verify_many said {status}/{answer!r}")
        elif status != 0 or answer != single or uid != single.uid:
            raise AssertionError(f"verify accepted, verify_many said {status}/{answer!r}")
        framed = _outcome(lambda: verify_rpc(frame, v, now=NOW))
        if isinstance(single, SlurmAuthError):
            if type(framed) is not type(single):
                raise AssertionError(f"verify refused ({single!r}), verify_rpc said {framed!r}")
        elif isinstance(framed, SlurmAuthError) and not isinstance(framed, BodyHashError):
            raise AssertionError(f"verify accepted, verify_rpc refused the token: {framed!r}")


def _target_sign_roundtrip(data: bytes) -> None:
    """sign() then verify(): either sign refuses (BadArgumentError) or the claims
    come back equal. Text decoded with surrogatepass, so NULs and lone
    surrogates reach the serialiser."""
    text = data.decode("utf-8", "surrogatepass") if _utf8ish(data) else data.decode("latin-1")
    claims = {"host": text, text[:8]: len(data)}
    try:
        tok = KEY.sign(claims)
    except BadArgumentError:
        return
    got = KEY.verify(tok).claims
    if got != claims:
        raise AssertionError(f"sign/verify round trip changed the claims: {claims!r} -> {got!r}")


def _utf8ish(data: bytes) -> bool:
    try:
        data.decode("utf-8", "surrogatepass")
        return True
    except UnicodeDecodeError:
        return False


def _target_jwt(data: bytes) -> None:
    """auth/jwt: claims JSON signed under an HS256 header (user names, client ids)."""
    JWT_VERIFIER.verify(KEY.sign_raw(b'{"alg":"HS256","typ":"JWT"}', data or b"{}"), now=NOW)


def _target_frame(data: bytes) -> None:
    """A whole RPC: parse, then (auth/slurm) verify the token and the body binding."""
    verify_rpc(parse_frame(data), VERIFIER, now=NOW)


def _target_sack(data: bytes) -> None:
    """SACK_CREATE / SACK_VERIFY bodies as the kiosk decodes them from a client."""
    if not data:
        return
    if data[0] & 1:
        decode_verify_body(data[1:])
    else:
        decode_create_body(data[1:])


TARGETS = [_target_token_raw, _target_token_signed, _target_json,
           _target_credential_raw, _target_credential_claims, _target_frame, _target_sign_roundtrip,
           _target_jwt, _target_sack, _target_single_batch_frame]


def test_one_input(data: bytes) -> None:
    if not data:
        return
    target = TARGETS[data[0] % len(TARGETS)]
    try:
        target(data[1:])
    except SlurmAuthError:
        pass  # the only acceptable failure


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
