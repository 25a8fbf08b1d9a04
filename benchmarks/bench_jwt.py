"""auth/jwt verification as slurmctld does it (signature, exp/iat, user claim,
user lookup), beside PyJWT and libjwt on the same tokens.

Two ways to run it:

* ``python benchmarks/bench_jwt.py`` (under ``flock /tmp/bench.lock``): every
  row measured in ONE run on the same tokens, rounds interleaved so that
  machine noise hits all rows alike; prints ns per token (best round) and the target
  ratios (HS256: >= 20x PyJWT and >= 4x libjwt; RS256: >= 1.5x PyJWT).
* ``python -m pytest benchmarks/bench_jwt.py --benchmark-only``: the same
  operations as pytest-benchmark cases.

Rows: ours = ``JWTVerifier.verify`` (one C call; the user resolved through
its UserCache; the same token again reuses its credential after C verified
it), the same with every token new (more distinct tokens than the verifier
keeps credentials for, each built anew), ``verify_many`` (one C call per
batch, per token) and the token in a plugin-102 frame (``FrameVerifier``:
parse and token in one C call; and the same frame parsed first, then
verified: two calls);
PyJWT = ``jwt.decode(token, key, algorithms=[...], options={"require":
["exp", "iat"]})`` plus the "sun" string check; libjwt =
benchmarks/bench_native/libjwt_decode.c in auth_jwt mode (jwt_decode +
jwt_get_alg + the exp/iat/sun reads and exp check of Slurm's auth/jwt, in
C). Neither PyJWT nor libjwt rows include a user lookup; ours do.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from slurmauth_fast import HS256Key
from slurmauth_fast.rpc import AUTH_JWT, REQUEST_PING, FrameVerifier, pack_frame, parse_frame
from slurmauth_fast import jwt as slurm_jwt

KEY = os.urandom(32)
NOW = int(time.time())
BATCH = 1000


def rs256_setup() -> Any:
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = priv.public_key().public_numbers().n
    jwk = {"kty": "RSA", "alg": "RS256", "kid": "k1", "e": "AQAB",
           "n": pyjwt.utils.base64url_encode(n.to_bytes(256, "big")).decode()}
    verifier = slurm_jwt.JWTVerifier(jwks=slurm_jwt.RS256KeySet.from_jwks(json.dumps({"keys": [jwk]})))
    token = pyjwt.encode({"iat": NOW, "exp": NOW + 1800, "sun": "root"}, priv, algorithm="RS256",
                         headers={"kid": "k1"})
    return verifier, token, priv.public_key()


# --- pytest-benchmark cases ---------------------------------------------------------

@pytest.fixture(scope="module")
def hs():
    key = HS256Key(KEY)
    return slurm_jwt.JWTVerifier(hs256_key=key), slurm_jwt.create_token(key, "root", caller_uid=0, now=NOW)


@pytest.fixture(scope="module")
def rs():
    return rs256_setup()


def test_mint_slurmauth_fast(benchmark):
    key = HS256Key(KEY)
    benchmark(slurm_jwt.create_token, key, "root", caller_uid=0)


def test_verify_hs256_slurmauth_fast(benchmark, hs):
    verifier, token = hs
    assert benchmark(verifier.verify, token, now=NOW).uid == 0


def test_verify_many_hs256_slurmauth_fast(benchmark, hs):
    verifier, token = hs
    assert benchmark(verifier.verify_many, [token] * BATCH, now=NOW)[-1].uid == 0


def test_verify_hs256_pyjwt(benchmark, hs):
    _, token = hs
    benchmark(pyjwt.decode, token, KEY, algorithms=["HS256"])


def test_verify_rs256_slurmauth_fast(benchmark, rs):
    verifier, token, _ = rs
    assert benchmark(verifier.verify, token, now=NOW).kid == "k1"


def test_verify_rs256_pyjwt(benchmark, rs):
    _, token, pub = rs
    benchmark(pyjwt.decode, token, pub, algorithms=["RS256"])


# --- one run, every row, ratios ---------------------------------------------------------

def _pyjwt_verify(token: str, key: Any, alg: str) -> Dict[str, Any]:
    claims = pyjwt.decode(token, key, algorithms=[alg], options={"require": ["exp", "iat"]})
    if not isinstance(claims.get("sun"), str):
        raise ValueError("no user")
    return claims


def _timed(fn: Callable[[], Any], per_call: int, seconds: float) -> float:
    """ns per token of fn (which handles per_call tokens), run for about ``seconds``."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4 or n >= 1 << 24:
            break
        n *= 4
    reps = max(1, int(n * seconds / max(elapsed, 1e-9)))
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) * 1e9 / (reps * per_call)


def _libjwt(token: bytes, workdir: str, seconds: float) -> Optional[Dict[str, float]]:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from verify_rate import _compile, _write
        exe = _compile("libjwt_decode.c", workdir, ["-ljwt"])
    except (ImportError, RuntimeError) as e:
        print(f"libjwt row skipped: {e}", file=sys.stderr)
        return None
    finally:
        sys.path.pop(0)
    key, tok = _write(workdir, "key", KEY), _write(workdir, "token", token)
    import subprocess
    out = subprocess.run([exe, key, tok, f"{seconds:.3f}", "0", "auth_jwt"], capture_output=True, text=True,
                         timeout=60 + 4 * seconds)
    if out.returncode:
        raise RuntimeError(f"libjwt_decode failed: {out.stderr.strip()}")
    return {line.split()[0]: float(line.split()[1]) for line in out.stdout.splitlines()}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=0.4, help="per row per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is shown")
    p.add_argument("--json", help="write the rows and ratios here")
    args = p.parse_args(argv)

    key = HS256Key(KEY)
    hs_verifier = slurm_jwt.JWTVerifier(hs256_key=key)
    hs_token = slurm_jwt.create_token(key, "root", caller_uid=0, lifespan=3600)
    hs_tokens = [hs_token] * BATCH
    # every token new: more distinct tokens (other iat) than JWTVerifier keeps credentials for,
    # cycled in order, so each verify builds its credential (the reuse cache's worst case)
    fresh_tokens = [slurm_jwt.create_token(key, "root", caller_uid=0, lifespan=86400, now=NOW - i)
                    for i in range(5 * slurm_jwt.CREDENTIALS_MAX)]
    rs_verifier, rs_token, rs_pub = rs256_setup()
    # the token as a client sends it to slurmctld: REQUEST_PING, auth/jwt section with the username
    jwt_frame = pack_frame(REQUEST_PING, b"", credential=hs_token, plugin=AUTH_JWT, username="root")
    frame_verifier = FrameVerifier(jwt=hs_verifier)
    assert frame_verifier.verify(jwt_frame).credential.username == "root"
    # every contender reads the same claims before anything is timed
    want = (hs_verifier.verify(hs_token).exp, "root")
    got = _pyjwt_verify(hs_token, KEY, "HS256")
    assert (got["exp"], got["sun"]) == want and hs_verifier.verify_many(hs_tokens)[-1].exp == want[0]
    assert rs_verifier.verify(rs_token).kid == "k1" and _pyjwt_verify(rs_token, rs_pub, "RS256")["sun"] == "root"

    rows: Dict[str, Callable[[], float]] = {
        "HS256 ours verify": lambda: _timed(lambda: hs_verifier.verify(hs_token), 1, args.seconds),
        f"HS256 ours verify_many ({BATCH}/call, per token)":
            lambda: _timed(lambda: hs_verifier.verify_many(hs_tokens), BATCH, args.seconds),
        "HS256 ours verify, every token new": lambda: _timed(
            lambda: [hs_verifier.verify(t) for t in fresh_tokens], len(fresh_tokens), args.seconds),
        "HS256 ours plugin-102 frame, FrameVerifier (one C call)":
            lambda: _timed(lambda: frame_verifier.verify(jwt_frame), 1, args.seconds),
        "HS256 ours plugin-102 frame, parsed first (two C calls)":
            lambda: _timed(lambda: frame_verifier.verify(parse_frame(jwt_frame)), 1, args.seconds),
        "HS256 PyJWT jwt.decode": lambda: _timed(lambda: _pyjwt_verify(hs_token, KEY, "HS256"), 1, args.seconds),
        "RS256 ours verify": lambda: _timed(lambda: rs_verifier.verify(rs_token), 1, args.seconds),
        "RS256 PyJWT jwt.decode": lambda: _timed(lambda: _pyjwt_verify(rs_token, rs_pub, "RS256"), 1,
                                                 args.seconds),
    }
    libjwt_row = "HS256 libjwt jwt_decode + auth/jwt claims (C)"
    samples: Dict[str, List[float]] = {name: [] for name in rows}
    samples[libjwt_row] = []
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            for name, measure in rows.items():
                samples[name].append(measure())
            lj = _libjwt(hs_token.encode(), workdir, 2 * args.seconds)
            if lj is not None:
                samples[libjwt_row].append(lj["decode_claims"])
    # best of the rounds (noise on a shared machine only ever adds), as verify_rate.py does
    ns = {name: min(v) for name, v in samples.items() if v}
    print(f"auth/jwt verification, {len(hs_token)}-byte scontrol token (iat, exp, sun), "
          f"best of {args.rounds} interleaved rounds x {args.seconds} s (range in brackets)")
    for name, value in ns.items():
        lo, hi = min(samples[name]), max(samples[name])
        print(f"  {name:55s} {value:9.0f} ns/token   ({lo:.0f} .. {hi:.0f})")
    ours, batch = ns["HS256 ours verify"], ns[f"HS256 ours verify_many ({BATCH}/call, per token)"]
    fresh = ns["HS256 ours verify, every token new"]
    targets = [("HS256 verify vs PyJWT", ns["HS256 PyJWT jwt.decode"] / ours, 20.0),
               ("HS256 verify (every token new) vs PyJWT", ns["HS256 PyJWT jwt.decode"] / fresh, 20.0),
               ("HS256 verify_many vs PyJWT", ns["HS256 PyJWT jwt.decode"] / batch, 20.0),
               ("RS256 verify vs PyJWT", ns["RS256 PyJWT jwt.decode"] / ns["RS256 ours verify"], 1.5)]
    if libjwt_row in ns:
        targets[2:2] = [("HS256 verify vs libjwt", ns[libjwt_row] / ours, 4.0),
                        ("HS256 verify (every token new) vs libjwt", ns[libjwt_row] / fresh, 4.0),
                        ("HS256 verify_many vs libjwt", ns[libjwt_row] / batch, 4.0)]
    print("targets")
    for label, ratio, goal in targets:
        print(f"  {label:42s} {ratio:6.1f}x  (target >= {goal:g}x: {'met' if ratio >= goal else 'NOT met'})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ns_per_token": ns, "samples": samples,
                       "ratios": {label: ratio for label, ratio, _ in targets}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
