"""The verification-rate comparison: slurmauth_fast against every verifier a
controller could use instead, in ONE run, on the SAME token and frame.

What runs (each row is skipped, with the reason printed, when its component
is not installed or not reachable):

* ours: ``verifier.Verifier.verify`` (one call per token), ``verify_many``
  (per token, batches of ``--batch``, status/uid/gid columns), ``verify_batch``
  (the same with a Credential object per token), ``create_credential``, the foundation's
  generic ``HS256Key.verify`` and ``rpc.verify_rpc`` on a whole framed RPC
  (parse + signature + claims + K12 body hash);
* peers: PyJWT's ``jwt.decode``, joserfc's ``jwt.decode`` + claims check, a
  minimal pure-Python verifier (``hmac`` with a precomputed key + ``json``),
  libjwt's ``jwt_decode`` (the library slurmctld links) timed inside a small
  C program, and munged's decode through :mod:`slurmauth_fast.munge` (a round
  trip to the local munged, each credential decoded once: MUNGE refuses
  replays);
* the floor: OpenSSL's HMAC-SHA256 over the token's signing input with a
  reused keyed context, timed inside a small C program. No HS256 verifier can
  beat it: everything else a verifier does comes on top.

Contenders are measured in interleaved rounds (every contender once per
round), and the best round counts, so a burst of load from other processes
hurts all of them alike; the ratios are what carries across machines.

Then a thread run (``verify_many``, ``verify_batch``, ``verify`` and the bare C batch call
in 1, 2, 4 threads of one process: the aggregate rate grows with free cores
only as far as the work runs without the GIL; ``hashlib.sha256`` on 1 MiB,
which drops the GIL too, shows how many cores the run actually had) and a
socket run: client processes send framed RPCs over a unix socket to the
example shim (``slurmauth-fast shim``, a separate process), one connection per
RPC as Slurm clients do, which verifies each and answers it unsigned, as slurmctld does.

``benchmarks/verify_rate.py`` runs :func:`main`; a CLI subcommand can reuse
:func:`add_arguments` and :func:`run_from_args`.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import os
import platform
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from slurmauth_fast import rpc
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.credential import PROTOCOL_VERSION, Credential, create_credential, create_many
from slurmauth_fast.errors import SignatureError
from slurmauth_fast.keys import Keyring
from slurmauth_fast.verifier import Verifier

NATIVE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_native")

#: Claims of the benchmark credential (an RPC credential like Slurm's, ~360 bytes).
UID, GID, HOST, CLUSTER = 1000, 1000, "login01", "cluster1"
#: REQUEST_PING, the body-less RPC a controller answers most.
MSG_TYPE = 1008
#: Slurm's own key files are 1024 random bytes (``dd bs=1024 count=1``).
DEFAULT_KEY_BYTES = 1024

BASELINE = "PyJWT jwt.decode"
FLOOR = "OpenSSL HMAC-SHA256 (reused ctx)"
C_BATCH = "slurmauth_fast sc_verify_list (C only)"
FORGED_FRAME = "slurmauth_fast verify_rpc (forged frame)"
LIBJWT_CREATE = "libjwt create (jwt_encode_str)"
#: Senders in the round-robin row: more than sender_cache.CACHE_MAX; their tokens
#: share host, cluster and payload lengths (one layout, one cache).
MANY_SENDERS = 10000


# ---- results -------------------------------------------------------------------

@dataclass
class Row:
    """One contender: the best and median cost of one operation over the rounds."""

    name: str
    group: str                    #: "ours", "peer" or "floor"
    unit: str                     #: what one operation is ("token", "frame", "credential")
    what: str                     #: what is timed
    samples_ns: List[float] = field(default_factory=list)

    @property
    def ns(self) -> float:
        return min(self.samples_ns)

    @property
    def median_ns(self) -> float:
        s = sorted(self.samples_ns)
        return s[len(s) // 2]

    @property
    def per_second(self) -> float:
        return 1e9 / self.ns


@dataclass(frozen=True)
class ThreadResult:
    api: str
    threads: int
    per_second: float             #: aggregate tokens per second over all threads
    speedup: float                #: over the same API in one thread


@dataclass(frozen=True)
class SocketResult:
    clients: int
    per_second: float             #: verified and answered RPCs per second
    requests: int
    seconds: float


@dataclass(frozen=True)
class Target:
    name: str
    want: str
    got: Optional[float]
    met: Optional[bool]           #: None: could not be measured in this run


@dataclass
class Report:
    meta: Dict[str, Any]
    rows: List[Row]
    skipped: Dict[str, str]
    threads: List[ThreadResult]
    sockets: List[SocketResult]
    targets: List[Target]

    def row(self, name: str) -> Optional[Row]:
        return next((r for r in self.rows if r.name == name), None)

    def to_json(self) -> Dict[str, Any]:
        base = self.row(BASELINE)
        floor = self.row(FLOOR)
        rows = []
        for r in self.rows:
            rows.append({
                "name": r.name, "group": r.group, "unit": r.unit, "what": r.what,
                "ns_per_op": r.ns, "median_ns_per_op": r.median_ns, "per_second": r.per_second,
                "samples_ns": r.samples_ns,
                "vs_pyjwt": base.ns / r.ns if base else None,
                "vs_floor": r.ns / floor.ns if floor else None,
            })
        return {"meta": self.meta, "rows": rows, "skipped": self.skipped,
                "threads": [asdict(t) for t in self.threads],
                "socket": [asdict(s) for s in self.sockets],
                "targets": [asdict(t) for t in self.targets]}


# ---- the shared inputs ---------------------------------------------------------

@dataclass
class Inputs:
    secret: bytes
    keyring: Keyring
    token: bytes
    signing_input: bytes
    tag: bytes
    frame: bytes
    payload: bytes


def make_inputs(key_bytes: int = DEFAULT_KEY_BYTES) -> Inputs:
    """A fresh random key, one RPC credential (its payload the K12 body hash
    of an empty REQUEST_PING, as Slurm binds it), and the frame carrying it."""
    secret = os.urandom(key_bytes)
    keyring = Keyring.from_key_bytes(secret)
    payload = body_hash_payload(b"", MSG_TYPE)
    token = create_credential(keyring, uid=UID, gid=GID, host=HOST, cluster=CLUSTER,
                              payload=payload, ttl=3600).encode("ascii")
    frame = rpc.pack_frame(MSG_TYPE, b"", credential=token)
    signing_input, _, sig = token.rpartition(b".")
    tag = base64.urlsafe_b64decode(sig + b"=" * (-len(sig) % 4))
    return Inputs(secret, keyring, token, signing_input, tag, frame, payload)


# ---- timing -------------------------------------------------------------------

def time_calls(fn: Callable[[Any], Any], arg: Any, seconds: float, per_call: int = 1) -> float:
    """ns per operation of ``fn(arg)`` (each call does ``per_call`` operations),
    calling it in growing chunks until ``seconds`` have passed."""
    chunk, calls = 1, 0
    rep = itertools.repeat
    start = time.perf_counter()
    while True:
        for _ in rep(None, chunk):
            fn(arg)
        calls += chunk
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed * 1e9 / (calls * per_call)
        if chunk < 1 << 16 and elapsed < seconds / 8:
            chunk *= 2


class Contender:
    """Something timed once per round; ``measure`` returns ns per operation
    for each row it produces."""

    rows: Tuple[Tuple[str, str, str, str], ...] = ()   # (name, group, unit, what)

    def measure(self, seconds: float) -> Dict[str, float]:
        raise NotImplementedError


class Calls(Contender):
    def __init__(self, name: str, group: str, unit: str, what: str, fn: Callable[[Any], Any],
                 arg: Any, per_call: int = 1) -> None:
        self.rows = ((name, group, unit, what),)
        self.fn, self.arg, self.per_call = fn, arg, per_call

    def measure(self, seconds: float) -> Dict[str, float]:
        return {self.rows[0][0]: time_calls(self.fn, self.arg, seconds, self.per_call)}


class Native(Contender):
    """A C program that times its own loop and prints ``NAME ns_per_op iterations``."""

    def __init__(self, exe: str, args: Sequence[str], names: Dict[str, Tuple[str, str, str, str]]):
        self.exe, self.args, self.names = exe, list(args), names
        self.rows = tuple(names.values())

    def measure(self, seconds: float) -> Dict[str, float]:
        out = subprocess.run([self.exe, *self.args[:2], f"{seconds:.3f}", *self.args[2:]],
                             capture_output=True, text=True, timeout=60 + 4 * seconds)
        if out.returncode:
            raise RuntimeError(f"{os.path.basename(self.exe)} failed: {out.stderr.strip()}")
        got = {}
        for line in out.stdout.splitlines():
            name, ns, _iters = line.split()
            if name in self.names:
                got[self.names[name][0]] = float(ns)
        return got


class MungeDecode(Contender):
    """munged decode through our binding. Every credential decodes once
    (munged refuses replays), so each round first encodes the credentials it
    will decode (untimed)."""

    def __init__(self, ctx: Any, payload: bytes) -> None:
        self.ctx, self.payload = ctx, payload
        self.rows = (("munged decode (slurmauth_fast.munge)", "peer", "credential",
                      "MungeContext.decode: round trip to munged (decrypt, MAC, replay cache)"),)
        self.n = 64

    def measure(self, seconds: float) -> Dict[str, float]:
        creds = [self.ctx.encode(self.payload) for _ in range(self.n)]
        decode = self.ctx.decode
        start = time.perf_counter()
        for c in creds:
            decode(c)
        elapsed = time.perf_counter() - start
        self.n = max(16, min(20000, int(self.n * seconds / max(elapsed, 1e-6))))
        return {self.rows[0][0]: elapsed * 1e9 / len(creds)}


# ---- contenders ------------------------------------------------------------------

def _compile(src: str, out_dir: str, libs: Sequence[str]) -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"no C compiler ({cc}) on PATH")
    exe = os.path.join(out_dir, os.path.splitext(src)[0])
    cmd = [cc, "-std=c99", "-O2", os.path.join(NATIVE_DIR, src), "-o", exe, *libs]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        first = (res.stderr.strip().splitlines() or ["?"])[0]
        raise RuntimeError(f"cannot compile {src} ({' '.join(libs)}): {first}")
    return exe


def _write(dirname: str, name: str, data: bytes) -> str:
    path = os.path.join(dirname, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _check_same(name: str, claims: Dict[str, Any], cred: Credential) -> None:
    """Every verifier must read the same credential: compare the claims."""
    want = {"uid": cred.uid, "gid": cred.gid, "host": cred.host, "cluster": cred.cluster,
            "iat": cred.iat, "exp": cred.exp, "ruid": cred.ruid, "context": cred.context}
    got = {k: claims.get(k) for k in want}
    if got != want:
        raise AssertionError(f"{name} decoded other claims than slurmauth_fast: {got} != {want}")


def ours(inp: Inputs, batch: int) -> List[Contender]:
    v = Verifier(inp.keyring, verifier_uid=0)
    cred = v.verify(inp.token)
    batch_tokens = _copies(inp.token, batch)
    got = v.verify_batch(batch_tokens)
    assert all(isinstance(c, Credential) and c == cred for c in got), "verify_batch disagrees"
    with v.verify_many(batch_tokens) as many:
        assert many.verified == batch and set(many.uid) == {UID}, "verify_many disagrees"
    key = inp.keyring.default_key().key
    assert key.verify(inp.token).claims["uid"] == UID
    out: List[Contender] = [
        Calls("slurmauth_fast verify", "ours", "token",
              "verifier.Verifier.verify: one call per token, full Slurm checks, Credential built",
              v.verify, inp.token),
        Calls(f"slurmauth_fast verify ({MANY_SENDERS:,} senders)", "ours", "token",
              f"verifier.Verifier.verify round-robin over {MANY_SENDERS:,} tokens of distinct uids "
              "(same lengths): more senders than the Credential field cache holds per layout, "
              "so most calls read every field (plus ~60 ns of itertools in the loop)",
              _round_robin(v, inp, MANY_SENDERS), None),
        Calls("slurmauth_fast verify_many", "ours", "token",
              f"verifier.Verifier.verify_many, {batch} tokens per call, cost per token: every "
              "check, result as status/uid/gid columns (Credentials built on demand)",
              lambda toks: v.verify_many(toks).release(), batch_tokens, batch),
        Calls("slurmauth_fast verify_batch", "ours", "token",
              f"verifier.Verifier.verify_batch, {batch} tokens per call, cost per token: "
              "verify_many plus a Credential (or error) object per token",
              v.verify_batch, batch_tokens, batch),
        Calls(C_BATCH, "ours", "token",
              f"the C call inside verify_many alone ({batch} tokens, their addresses read "
              "once): every check, no Python objects", _c_batch(v, batch_tokens), None, batch),
        Calls("slurmauth_fast HS256Key.verify", "ours", "token",
              "jws.HS256Key.verify: generic JWS (split, base64url, HMAC) + JSON parse in Python",
              key.verify, inp.token),
    ]
    assert rpc.verify_rpc(inp.frame, v).credential == cred
    out.append(Calls("slurmauth_fast verify_rpc", "ours", "frame",
                     "rpc.verify_rpc on the framed REQUEST_PING: parse + signature + claims + "
                     "K12 body hash", lambda f: rpc.verify_rpc(f, v), inp.frame))
    forged = _forged_frame(inp)
    out.append(Calls(FORGED_FRAME, "ours", "frame",
                     "rpc.verify_rpc on the same frame with one tag character changed: refused "
                     "(SignatureError raised and caught); must cost no more than a good frame",
                     _refused(v), forged))
    ring = inp.keyring
    out.append(Calls("slurmauth_fast create_credential", "ours", "credential",
                     "credential.create_credential with the benchmark claims (sign + serialise)",
                     lambda p: create_credential(ring, uid=UID, gid=GID, host=HOST, cluster=CLUSTER,
                                                 payload=p, ttl=60), inp.payload))
    items: List[Dict[str, Any]] = [dict(uid=UID, gid=GID, host=HOST, cluster=CLUSTER,
                                        payload=inp.payload, ttl=60)] * batch
    same = [dict(items[0], now=1_700_000_000)] * 2
    assert create_many(ring, same) == [create_credential(ring, uid=UID, gid=GID, host=HOST,
                                                         cluster=CLUSTER, payload=inp.payload,
                                                         ttl=60, now=1_700_000_000)] * 2, \
        "create_many disagrees"
    out.append(Calls("slurmauth_fast create_many", "ours", "credential",
                     f"tokens.create_many, {batch} credentials (the create_credential claims) per "
                     "call, cost per credential", lambda its: create_many(ring, its), items, batch))
    return out


def _forged_frame(inp: Inputs) -> bytes:
    """The benchmark frame with its token's last tag character changed (same length)."""
    head, _, sig = inp.token.rpartition(b".")
    bad = head + b"." + sig[:-1] + (b"A" if sig[-1:] != b"A" else b"E")
    return rpc.pack_frame(MSG_TYPE, b"", credential=bad)


def _refused(v: Verifier) -> Callable[[bytes], None]:
    def call(frame: bytes) -> None:
        try:
            rpc.verify_rpc(frame, v)
        except SignatureError:
            return
        raise AssertionError("the forged frame verified")
    return call


def python_peers(inp: Inputs, cred: Credential) -> Tuple[List[Contender], Dict[str, str]]:
    skipped: Dict[str, str] = {}
    out: List[Contender] = []
    secret = inp.secret
    try:
        import jwt as pyjwt
    except ImportError:
        skipped[BASELINE] = "PyJWT is not installed (pip install pyjwt; it is in the bench extra)"
    else:
        def pyjwt_decode(tok: bytes) -> Dict[str, Any]:
            return pyjwt.decode(tok, secret, algorithms=["HS256"])
        _check_same("PyJWT", pyjwt_decode(inp.token), cred)
        out.append(Calls(BASELINE, "peer", "token",
                         "jwt.decode(token, key, algorithms=['HS256']), default claim checks",
                         pyjwt_decode, inp.token))
    try:
        from joserfc import jwt as jose_jwt
        from joserfc.jwk import OctKey
    except ImportError:
        skipped["joserfc jwt.decode"] = "joserfc is not installed (pip install joserfc; bench extra)"
    else:
        okey = OctKey.import_key(secret)
        registry = jose_jwt.JWTClaimsRegistry()

        def jose_decode(tok: bytes) -> Dict[str, Any]:
            t = jose_jwt.decode(tok, okey, algorithms=["HS256"])
            registry.validate(t.claims)
            return t.claims
        _check_same("joserfc", jose_decode(inp.token), cred)
        out.append(Calls("joserfc jwt.decode", "peer", "token",
                         "jwt.decode(token, OctKey, algorithms=['HS256']) + JWTClaimsRegistry.validate",
                         jose_decode, inp.token))
    out.append(minimal_python(inp, cred))
    return out, skipped


def minimal_hs256_verifier(secret: bytes) -> Callable[[bytes], Dict[str, Any]]:
    """The least a pure-Python HS256 verifier can do: precomputed HMAC key
    (``hmac`` object copied per token), constant-time compare, alg and exp checks."""
    keyed = hmac.new(secret, digestmod=hashlib.sha256)
    b64 = base64.urlsafe_b64decode
    loads = json.loads
    compare = hmac.compare_digest

    def verify(tok: bytes) -> Dict[str, Any]:
        signing, _, sig = tok.rpartition(b".")
        h, _, c = signing.partition(b".")
        m = keyed.copy()
        m.update(signing)
        if not compare(m.digest(), b64(sig + b"=" * (-len(sig) % 4))):
            raise ValueError("bad signature")
        if loads(b64(h + b"=" * (-len(h) % 4))).get("alg") != "HS256":
            raise ValueError("bad alg")
        claims = loads(b64(c + b"=" * (-len(c) % 4)))
        if claims["exp"] < time.time():
            raise ValueError("expired")
        return claims
    return verify


def minimal_python(inp: Inputs, cred: Credential) -> Contender:
    verify = minimal_hs256_verifier(inp.secret)
    _check_same("minimal hmac+json", verify(inp.token), cred)
    return Calls("minimal Python hmac+json", "peer", "token",
                 "hmac (precomputed key, .copy()) + compare_digest + base64 + json.loads + alg/exp",
                 verify, inp.token)


def native_peers(inp: Inputs, workdir: str) -> Tuple[List[Contender], Dict[str, str]]:
    skipped: Dict[str, str] = {}
    out: List[Contender] = []
    key_file = _write(workdir, "key", inp.secret)
    try:
        exe = _compile("hmac_floor.c", workdir, ["-lcrypto"])
    except RuntimeError as e:
        skipped[FLOOR] = f"{e} (needs gcc and libssl-dev)"
    else:
        msg = _write(workdir, "signing_input", inp.signing_input)
        out.append(Native(exe, [key_file, msg, inp.tag.hex()], {
            "hmac_ctx": (FLOOR, "floor", "token",
                         "C: HMAC_Init_ex(ctx, NULL, ...) + Update + Final over the signing input"),
            "evp_mac_dup": ("OpenSSL EVP_MAC (dup'd ctx)", "floor", "token",
                            "C: EVP_MAC_CTX_dup of a keyed context + update + final, per token"),
        }))
    try:
        exe = _compile("libjwt_decode.c", workdir, ["-ljwt"])
    except RuntimeError as e:
        skipped["libjwt jwt_decode"] = f"{e} (needs the Debian package libjwt-dev)"
    else:
        tok = _write(workdir, "token", inp.token)
        out.append(Native(exe, [key_file, tok, str(UID)], {
            "decode": ("libjwt jwt_decode", "peer", "token",
                       "C: jwt_decode(&jwt, token, key) + jwt_get_alg + jwt_free"),
            "decode_claims": ("libjwt jwt_decode + claims", "peer", "token",
                              "C: as above + the jwt_get_grant[_int] calls of Slurm's decode_jwt()"),
        }))
    try:
        exe = _compile("libjwt_create.c", workdir, ["-ljwt"])
    except RuntimeError as e:
        skipped[LIBJWT_CREATE] = f"{e} (needs the Debian package libjwt-dev)"
    else:
        # the helper checks that libjwt writes exactly our token for these claims
        iat = int(time.time())
        ours = create_credential(inp.keyring, uid=UID, gid=GID, host=HOST, cluster=CLUSTER,
                                 payload=inp.payload, ttl=60, now=iat)
        tok = _write(workdir, "created", ours.encode("ascii"))
        pl = _write(workdir, "payload", inp.payload)
        out.append(Native(exe, [key_file, tok, pl, str(UID), str(GID), HOST, CLUSTER, str(iat),
                                "60", str(PROTOCOL_VERSION)], {
            "create": (LIBJWT_CREATE, "peer", "credential",
                       "C: Slurm's create_internal() calls: jwt_new + jwt_add_grant[_int] x10 "
                       "(payload via jwt_Base64encode) + jwt_set_alg + jwt_encode_str + jwt_free"),
        }))
    return out, skipped


def munge_peer(inp: Inputs, socket_path: Optional[str] = None) -> Tuple[List[Contender], Dict[str, str]]:
    from slurmauth_fast import munge

    name = "munged decode (slurmauth_fast.munge)"
    try:
        ctx = munge.MungeContext(socket=socket_path)
        cred = ctx.decode(ctx.encode(inp.payload))
        if cred.payload != inp.payload:
            raise RuntimeError("munged returned another payload")
    except Exception as e:  # the daemon is absent, stopped, or refuses us
        return [], {name: f"munged is not reachable ({type(e).__name__}: {e})"}
    return [MungeDecode(ctx, inp.payload)], {}


# ---- the run -------------------------------------------------------------------

def measure_rows(contenders: Sequence[Contender], seconds: float, rounds: int,
                 progress: Optional[Callable[[str], None]] = None) -> Tuple[List[Row], Dict[str, str]]:
    """Every contender once per round (``seconds / rounds`` each time)."""
    rows: Dict[str, Row] = {}
    failed: Dict[str, str] = {}
    live = list(contenders)
    for r in range(rounds):
        for c in list(live):
            try:
                got = c.measure(seconds / rounds)
            except Exception as e:  # a native helper that fails is reported, not fatal
                live.remove(c)
                for spec in c.rows:
                    rows.pop(spec[0], None)
                    failed[spec[0]] = f"failed: {e}"
                continue
            for name, group, unit, what in c.rows:
                if name in got:
                    rows.setdefault(name, Row(name, group, unit, what)).samples_ns.append(got[name])
        if progress:
            progress(f"round {r + 1}/{rounds} done")
    order = [spec[0] for c in contenders for spec in c.rows]
    return [rows[n] for n in order if n in rows], failed


def thread_run(inp: Inputs, threads: Sequence[int], seconds: float, batch: int) -> List[ThreadResult]:
    """Aggregate rate of ``verify_many``, ``verify_batch``, ``verify`` and the bare C batch call
    with T threads calling at once (one Verifier shared: it is thread-safe),
    and of hashlib.sha256 as a reference for the cores actually free."""
    v = Verifier(inp.keyring, verifier_uid=0)
    out: List[ThreadResult] = []
    apis: Dict[str, Tuple[Callable[[Any], Any], Any, int]] = {
        "verify_many": (lambda toks: v.verify_many(toks).release(), _copies(inp.token, batch), batch),
        "verify_batch": (v.verify_batch, _copies(inp.token, batch), batch),
        "verify": (v.verify, inp.token, 1),
        C_BATCH[len("slurmauth_fast "):]: (_c_batch(v, _copies(inp.token, batch)), None, batch),
        # How much parallelism the machine gave this run: hashlib drops the GIL too.
        "reference: hashlib.sha256(1 MiB)": (hashlib.sha256, bytes(1 << 20), 1),
    }
    for api, (fn, arg, per_call) in apis.items():
        single = None
        for t in threads:
            counts = [0] * t
            stop = threading.Event()
            go = threading.Barrier(t + 1)

            def work(i: int) -> None:
                go.wait()
                n = 0
                while not stop.is_set():
                    for _ in range(8):
                        fn(arg)
                    n += 8
                counts[i] = n

            workers = [threading.Thread(target=work, args=(i,)) for i in range(t)]
            for w in workers:
                w.start()
            go.wait()
            start = time.perf_counter()
            time.sleep(seconds)
            stop.set()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - start
            rate = sum(counts) * per_call / elapsed
            if single is None:
                single = rate
            out.append(ThreadResult(api, t, rate, rate / single))
    return out


def _round_robin(v: Verifier, inp: Inputs, senders: int) -> Callable[[Any], Any]:
    """verify() over tokens from ``senders`` distinct uids, one after the other."""
    toks = [create_credential(inp.keyring, uid=UID + i, gid=GID, host=HOST, cluster=CLUSTER,
                              payload=inp.payload, ttl=3600).encode("ascii") for i in range(senders)]
    nxt = itertools.cycle(toks).__next__
    verify = v.verify

    def call(_: Any) -> None:
        verify(nxt())
    for t in toks:
        if verify(t).uid < UID:
            raise AssertionError("round-robin token refused")
    return call


def _copies(token: bytes, batch: int) -> List[bytes]:
    """``batch`` equal tokens, each its own bytes object (as tokens read from
    distinct connections are), so a batch call reads ``batch`` buffers, not
    one buffer ``batch`` times over."""
    return [bytes(bytearray(token)) for _ in range(batch)]


def _c_batch(v: Verifier, tokens: List[bytes]) -> Callable[[Any], Any]:
    """The C call inside verify_many alone, the tokens' addresses read once
    and the buffers allocated once per thread: how the GIL-free part scales,
    without the Python around it."""
    from slurmauth_fast._bindings import ffi, lib
    from slurmauth_fast._bindings.slurmcred import CACHE_LINE

    batch, held = len(tokens), tuple(tokens)
    ptrs, lens, total = ffi.new("const char *[]", batch), ffi.new("size_t[]", batch), ffi.new("size_t *")
    if lib.sa_py_bytes_items(id(held), ptrs, lens, batch, total) != batch:
        raise AssertionError("the benchmark tokens are not all bytes")
    wneed = lib.sc_batch_work_need(v.c_policy, total[0])
    oneed = lib.sc_batch_out_need(batch, total[0])
    keyset, policy = v.keyring.snapshot().keyset, v.c_policy
    tls = threading.local()

    def aligned(size: int) -> Tuple[Any, Any]:
        """A buffer and a pointer into it aligned as verify_many's own are."""
        buf = ffi.new("uint8_t[]", size + CACHE_LINE)
        return buf, buf + (-int(ffi.cast("uintptr_t", buf)) % CACHE_LINE)

    def call(_: Any, _held: Tuple[bytes, ...] = held) -> None:
        """One batch (``_held`` keeps the bytes objects ``ptrs`` points into alive)."""
        try:
            work, out, status = tls.bufs[2:]
        except AttributeError:
            (wbuf, work), (obuf, out) = aligned(wneed), aligned(oneed)
            tls.bufs = (wbuf, obuf, work, out, ffi.cast("int32_t *", out + 8 * batch))
            work, out, status = tls.bufs[2:]
        rc = lib.sc_verify_list(keyset, policy, ptrs, lens, batch, -1, work, wneed, out, oneed)
        if rc or status[0] or status[batch - 1]:
            raise AssertionError(f"sc_verify_list refused the benchmark tokens ({rc}, {status[0]})")
    return call


def _client(addr: Any, frame: bytes, seconds: float, barrier: Any, result: Any) -> None:
    """One client process, talking as Slurm clients do: one connection per RPC
    (connect, send the frame, read the whole reply, close), repeated. TCP when
    ``addr`` is a (host, port) tuple, else a unix socket path. Puts the count of
    answered RPCs, or the error text (a reply with rc != 0 included), on ``result``."""
    family = socket.AF_INET if isinstance(addr, tuple) else socket.AF_UNIX
    barrier.wait()
    n, deadline = 0, time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.connect(addr)
                if family == socket.AF_INET:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(frame)
                head = b""
                while len(head) < 4:
                    chunk = s.recv(4 - len(head))
                    if not chunk:
                        raise ConnectionError("the shim closed the connection (frame refused?)")
                    head += chunk
                (left,) = struct.unpack(">I", head)
                reply = b""
                while left:
                    chunk = s.recv(min(left, 65536))
                    if not chunk:
                        raise ConnectionError("the shim closed the connection mid-reply")
                    left -= len(chunk)
                    reply += chunk
                rc = struct.unpack(">I", reply[-4:])[0] if len(reply) >= 4 else -1
                if rc != 0:                       # RESPONSE_SLURM_RC: the body is the rc
                    raise ConnectionError(f"the shim answered rc {rc} (frame refused)")
            n += 1
    except OSError as e:
        result.put(f"{type(e).__name__}: {e}")
        return
    result.put(n)


def _start_shim(inp: Inputs, workdir: str, transport: str) -> Tuple[subprocess.Popen, Any]:
    """The example shim in its own process, and the address it listens on."""
    import select

    key_file = _write(workdir, "slurm.key", inp.secret)
    where = ["--unix", os.path.join(workdir, "shim.sock")] if transport == "unix" else \
        ["--listen", "127.0.0.1:0"]
    log = open(os.path.join(workdir, "shim.log"), "w")
    shim = subprocess.Popen([sys.executable, "-m", "slurmauth_fast.cli", "shim", *where,
                             "--key", key_file, "--conf-dir", workdir, "--verifier-uid", "0"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    log.close()
    deadline = time.monotonic() + 20
    assert shim.stdout is not None
    while time.monotonic() < deadline and shim.poll() is None:
        if not select.select([shim.stdout], [], [], 0.2)[0]:
            continue
        line = shim.stdout.readline().strip()      # "listening on tcp:HOST:PORT" / "unix:PATH"
        if line.startswith("listening on unix:"):
            return shim, line[len("listening on unix:"):]
        if line.startswith("listening on tcp:"):
            host, _, port = line[len("listening on tcp:"):].rpartition(":")
            return shim, (host, int(port))
    _stop(shim)
    with open(os.path.join(workdir, "shim.log")) as f:
        raise RuntimeError(f"the shim did not start: {f.read().strip()[-300:]}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def socket_run(inp: Inputs, clients: Sequence[int], seconds: float, workdir: str,
               transport: str = "tcp") -> Tuple[List[SocketResult], Optional[str]]:
    """Client processes send the framed RPC to the example shim (a separate
    process) over loopback TCP (or a unix socket) and read each reply;
    verified and answered RPCs per second."""
    import multiprocessing as mp

    try:
        shim, addr = _start_shim(inp, workdir, transport)
    except RuntimeError as e:
        return [], str(e)
    results: List[SocketResult] = []
    try:
        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        for n in clients:
            barrier = ctx.Barrier(n + 1)
            q = ctx.Queue()
            procs = [ctx.Process(target=_client, args=(addr, inp.frame, seconds, barrier, q))
                     for _ in range(n)]
            for p in procs:
                p.start()
            barrier.wait(timeout=30)
            start = time.perf_counter()
            counts = [q.get(timeout=seconds + 30) for _ in procs]
            elapsed = time.perf_counter() - start
            for p in procs:
                p.join()
            errors = [c for c in counts if isinstance(c, str)]
            if errors:
                return results, f"a client failed: {errors[0]}"
            total = sum(counts)
            results.append(SocketResult(n, total / elapsed, total, elapsed))
    finally:
        _stop(shim)
    return results, None


def evaluate(report: Report) -> List[Target]:
    """The issue's targets, as ratios from this run."""
    def ns(name: str) -> Optional[float]:
        r = report.row(name)
        return r.ns if r else None

    ours, batch, frame = (ns("slurmauth_fast verify"), ns("slurmauth_fast verify_many"),
                          ns("slurmauth_fast verify_rpc"))
    pyjwt, libjwt, floor = ns(BASELINE), ns("libjwt jwt_decode"), ns(FLOOR)
    create, libjwt_create = ns("slurmauth_fast create_credential"), ns(LIBJWT_CREATE)

    def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return a / b if a and b else None

    specs = [
        ("verify vs PyJWT", ">= 20x", ratio(pyjwt, ours), lambda x: x >= 20),
        ("verify vs libjwt jwt_decode", ">= 4x", ratio(libjwt, ours), lambda x: x >= 4),
        ("verify_many per token vs OpenSSL HMAC floor", "<= 1.5x the floor's time",
         ratio(batch, floor), lambda x: x <= 1.5),
        ("verify_rpc (whole frame) vs PyJWT (token only)", ">= 10x", ratio(pyjwt, frame),
         lambda x: x >= 10),
        ("create_credential vs libjwt create", ">= 5x", ratio(libjwt_create, create),
         lambda x: x >= 5),
        ("verify_many per token vs OpenSSL HMAC floor (multi-buffer)", "<= 1.0x the floor's time",
         ratio(batch, floor), lambda x: x <= 1.0),
    ]
    return [Target(n, w, g, None if g is None else bool(ok(g))) for n, w, g, ok in specs]


@dataclass
class Options:
    seconds: float = 1.0          #: per contender, over all rounds
    rounds: int = 3
    batch: int = 1000
    key_bytes: int = DEFAULT_KEY_BYTES
    threads: Tuple[int, ...] = (1, 2, 4)
    thread_seconds: float = 1.0
    clients: Tuple[int, ...] = (1, 2, 4)
    socket_seconds: float = 1.5
    transport: str = "tcp"                #: "tcp" (loopback, as Slurm talks) or "unix"
    compare: bool = True                  #: False: only slurmauth_fast's own rows
    native: bool = True
    munge: bool = True
    munge_socket: Optional[str] = None    #: None: libmunge's default socket


def run(opts: Options, progress: Optional[Callable[[str], None]] = None) -> Report:
    say = progress or (lambda _m: None)
    inp = make_inputs(opts.key_bytes)
    workdir = tempfile.mkdtemp(prefix="slurmauth-bench-")
    try:
        contenders = ours(inp, opts.batch)
        skipped: Dict[str, str] = {}
        cred = Verifier(inp.keyring, verifier_uid=0).verify(inp.token)
        for part in (python_peers(inp, cred) if opts.compare else ([], {}),
                     native_peers(inp, workdir) if opts.compare and opts.native else ([], {}),
                     munge_peer(inp, opts.munge_socket) if opts.compare and opts.munge
                     else ([], {})):
            contenders += part[0]
            skipped.update(part[1])
        n_rows = sum(len(c.rows) for c in contenders)
        say(f"timing {n_rows} contenders, {opts.rounds} interleaved rounds, "
            f"{opts.seconds:g} s each ...")
        rows, failed = measure_rows(contenders, opts.seconds, opts.rounds, say)
        skipped.update(failed)
        threads: List[ThreadResult] = []
        if opts.threads:
            say(f"thread run: {', '.join(map(str, opts.threads))} threads ...")
            threads = thread_run(inp, opts.threads, opts.thread_seconds, opts.batch)
        sockets: List[SocketResult] = []
        if opts.clients:
            say(f"socket run: {', '.join(map(str, opts.clients))} client processes ...")
            sockets, why = socket_run(inp, opts.clients, opts.socket_seconds, workdir,
                                      opts.transport)
            if why:
                skipped["socket run (clients -> shim)"] = why
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    meta = {
        "token_bytes": len(inp.token), "frame_bytes": len(inp.frame),
        "key_bytes": opts.key_bytes, "batch": opts.batch, "rounds": opts.rounds,
        "transport": opts.transport,
        "seconds_per_contender": opts.seconds, "cpus": os.cpu_count(),
        "machine": platform.machine(), "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    report = Report(meta, rows, skipped, threads, sockets, [])
    report.targets = evaluate(report)
    return report


# ---- output ----------------------------------------------------------------------

def format_report(report: Report) -> str:
    m = report.meta
    base, floor = report.row(BASELINE), report.row(FLOOR)
    load = f", load {m['load_average'][0]:.1f}" if m["load_average"] else ""
    frame = f", RPC frame {m['frame_bytes']} bytes" if m["frame_bytes"] else ""
    lines = [f"auth/slurm credential: {m['token_bytes']} bytes{frame}; key {m['key_bytes']} bytes; "
             f"{m['cpus']} CPUs{load}",
             f"best of {m['rounds']} interleaved rounds, {m['seconds_per_contender']:g} s per contender",
             "",
             f"{'contender':<38}{'ns/op':>10}{'ops/s':>13}{'vs PyJWT':>10}{'x floor':>9}"]
    for r in report.rows:
        vs = f"{base.ns / r.ns:>9.1f}x" if base else f"{'-':>10}"
        fl = f"{r.ns / floor.ns:>8.2f}x" if floor else f"{'-':>9}"
        lines.append(f"{r.name:<38}{r.ns:>10,.0f}{r.per_second:>13,.0f}{vs}{fl}")
    if report.threads:
        lines += ["", f"{'threads (aggregate, one process)':<38}{'ops/s':>13}{'speedup':>10}"]
        for th in report.threads:
            lines.append(f"{th.api + ' x ' + str(th.threads):<38}{th.per_second:>13,.0f}"
                         f"{th.speedup:>9.2f}x")
    if report.sockets:
        lines += ["", f"{'socket (clients -> shim, ' + m['transport'] + ')':<38}{'RPCs/s':>13}"]
        for s in report.sockets:
            lines.append(f"{str(s.clients) + ' client process(es)':<38}{s.per_second:>13,.0f}")
    lines += ["", "targets (ratios from this run):"]
    for t in report.targets:
        got = "not measured" if t.got is None else f"{t.got:.2f}x"
        state = {True: "MET", False: "NOT MET", None: "-"}[t.met]
        lines.append(f"  {t.name:<48} want {t.want:<26} got {got:<14} {state}")
    if report.skipped:
        lines += ["", "skipped:"] + [f"  {n}: {why}" for n, why in report.skipped.items()]
    return "\n".join(lines)


def format_markdown(report: Report) -> str:
    """The rate table as Markdown (for README)."""
    m = report.meta
    base, floor = report.row(BASELINE), report.row(FLOOR)
    out = [f"{m['time']}, {m['cpus']} CPUs, token {m['token_bytes']} B"
           + (f", frame {m['frame_bytes']} B" if m["frame_bytes"] else "")
           + f", key {m['key_bytes']} B, best of {m['rounds']} rounds x "
           f"{m['seconds_per_contender'] / m['rounds']:.2g} s:", "",
           "| contender | ns/op | ops/s | vs PyJWT | x floor |", "|---|---:|---:|---:|---:|"]
    for r in report.rows:
        vs = f"{base.ns / r.ns:.1f}x" if base else "-"
        fl = f"{r.ns / floor.ns:.2f}x" if floor else "-"
        out.append(f"| {r.name} | {r.ns:,.0f} | {r.per_second:,.0f} | {vs} | {fl} |")
    if report.threads:
        out += ["", "| threads | ops/s | speedup |", "|---|---:|---:|"]
        out += [f"| {t.api} x {t.threads} | {t.per_second:,.0f} | {t.speedup:.2f}x |"
                for t in report.threads]
    if report.sockets:
        out += ["", f"| client processes -> shim ({m['transport']}) | RPCs/s |", "|---|---:|"]
        out += [f"| {s.clients} | {s.per_second:,.0f} |" for s in report.sockets]
    out += ["", "| target | want | got | |", "|---|---|---:|---|"]
    for t in report.targets:
        got = "-" if t.got is None else f"{t.got:.2f}x"
        out.append(f"| {t.name} | {t.want} | {got} | "
                   f"{ {True: 'met', False: '**not met**', None: 'not measured'}[t.met]} |")
    return "\n".join(out)


def write_png(report: Report, path: str) -> Optional[str]:
    """A bar chart of the rates (log scale); returns why not when matplotlib is absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib; it is in the bench extra)"
    colors = {"ours": "#1f77b4", "peer": "#999999", "floor": "#d62728"}
    rows = report.rows[::-1]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.5))
    ax.barh([r.name for r in rows], [r.per_second for r in rows],
            color=[colors.get(r.group, "#555555") for r in rows])
    ax.set_xscale("log")
    ax.set_xlabel("operations per second (log scale; best of interleaved rounds)")
    ax.set_title(f"auth/slurm credential verification, {report.meta['token_bytes']}-byte token, "
                 f"{report.meta['cpus']} CPUs")
    for i, r in enumerate(rows):
        ax.text(r.per_second, i, f" {r.per_second:,.0f}/s", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _ints(text: str) -> Tuple[int, ...]:
    if text.strip() in ("", "0", "none"):
        return ()
    try:
        vals = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}")
    if any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError("counts must be positive")
    return vals


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return v


def _positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return v


def add_arguments(p: argparse.ArgumentParser, *, write_files: bool = True) -> None:
    """The options of :func:`run_from_args`. ``write_files``: whether the JSON
    and the chart are written by default (the script: yes; the CLI: on request)."""
    p.add_argument("--seconds", type=_positive, default=Options.seconds,
                   help="time per contender over all rounds (default %(default)s)")
    p.add_argument("--rounds", type=_count, default=Options.rounds,
                   help="interleaved rounds; the best counts (default %(default)s)")
    p.add_argument("--batch", type=_count, default=Options.batch,
                   help="tokens per verify_many/verify_batch call (default %(default)s)")
    p.add_argument("--key-bytes", type=_count, default=Options.key_bytes,
                   help="HMAC key length; Slurm's slurm.key is 1024 (default %(default)s)")
    p.add_argument("--threads", type=_ints, default=Options.threads,
                   help="thread counts for the thread run, comma-separated; 0 skips (default 1,2,4)")
    p.add_argument("--thread-seconds", type=_positive, default=Options.thread_seconds,
                   help="time per API and thread count (default %(default)s)")
    p.add_argument("--clients", type=_ints, default=Options.clients,
                   help="client process counts for the socket run; 0 skips (default 1,2,4)")
    p.add_argument("--socket-seconds", type=_positive, default=Options.socket_seconds,
                   help="time per client count (default %(default)s)")
    p.add_argument("--transport", choices=("tcp", "unix"), default=Options.transport,
                   help="socket run over loopback TCP (Slurm's transport) or a unix socket")
    p.add_argument("--no-compare", action="store_true",
                   help="only slurmauth_fast's own rows (no peers, no floor)")
    p.add_argument("--no-native", action="store_true", help="skip the C helpers (floor, libjwt)")
    p.add_argument("--no-munge", action="store_true", help="skip munged")
    p.add_argument("--munge-socket", metavar="PATH", default=None,
                   help="munged's socket (default: libmunge's, /run/munge/munge.socket.2)")
    p.add_argument("--json", metavar="PATH", default="verify_rate.json" if write_files else "",
                   help="write the results as JSON here (default: %(default)r; '' to skip)")
    p.add_argument("--png", metavar="PATH", default="verify_rate.png" if write_files else "",
                   help="write a bar chart here when matplotlib is installed (default: %(default)r; "
                        "'' to skip)")
    p.add_argument("--markdown", metavar="PATH", default="",
                   help="also write the tables as Markdown here (as in README)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=True,
                   help="report each round and run on stderr (the default)")
    g.add_argument("-q", "--no-progress", dest="progress", action="store_false")


def options_from(args: argparse.Namespace) -> Options:
    return Options(seconds=args.seconds, rounds=args.rounds, batch=args.batch,
                   key_bytes=args.key_bytes, threads=args.threads,
                   thread_seconds=args.thread_seconds, clients=args.clients,
                   socket_seconds=args.socket_seconds, transport=args.transport,
                   compare=not args.no_compare, native=not args.no_native,
                   munge=not args.no_munge, munge_socket=args.munge_socket)


def run_from_args(args: argparse.Namespace) -> int:
    """Run, print the table, write the JSON and PNG."""
    def say(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)
    report = run(options_from(args), say if args.progress else None)
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report.to_json(), f, indent=1)
        print(f"\nJSON: {args.json}")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(format_markdown(report) + "\n")
    if args.png:
        why = write_png(report, args.png)
        print(f"chart: {args.png}" if why is None else f"chart: skipped: {why}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="verify_rate", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
