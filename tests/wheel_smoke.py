"""Smoke check of an installed slurmauth_fast (run by tests/test_wheel.py inside a fresh
venv holding only the wheel and its dependencies, with no compiler on PATH): the C
core loads from the installed abi3 extension, an auth/slurm credential is created
and verified, an RPC frame with its K12 body hash is verified, and a tampered token
and frame are refused. Prints one line per check; exits non-zero on any failure."""
import base64
import hashlib
import hmac
import os
import struct
import sys

import slurmauth_fast
from slurmauth_fast import HS256Key, keys, tokens
from slurmauth_fast import _native
from slurmauth_fast.rpc import HASH_K12, REQUEST_PING, body_hash_payload, pack_frame, verify_rpc

prefix = os.path.realpath(sys.prefix)
for mod in (slurmauth_fast, _native):
    where = os.path.realpath(mod.__file__)
    assert where.startswith(prefix + os.sep), f"{mod.__name__} loaded from {where}, not from {prefix}"
assert _native.__file__.endswith(".abi3.so"), _native.__file__
print("installed:", os.path.dirname(_native.__file__), os.path.basename(_native.__file__))
print("python:", sys.version.split()[0])

lib = _native.lib
# the fuzzers' entry point (csrc/fuzz.c, a fixed HMAC key) is not in a wheel
assert not hasattr(lib, "sa_fuzz_rpc_frame"), "csrc/fuzz.c was compiled into the wheel"
print("sha256:", {1: "portable", 2: "SHA-NI", 3: "ARMv8 SHA2"}.get(lib.sa_sha256_active(), "?"))

key = bytes(range(64))
ring = keys.Keyring.from_key_bytes(key)
verifier = tokens.Verifier(ring, verifier_uid=0)

# create + verify
token = tokens.create_credential(ring, uid=1000, gid=1001, host="login1", cluster="c1")
cred = verifier.verify(token)
assert (cred.uid, cred.gid, cred.host, cred.cluster) == (1000, 1001, "login1", "c1"), cred
# the signature is plain HMAC-SHA256 over the signing input
head, claims, sig = (token.decode() if isinstance(token, bytes) else token).split(".")
mac = hmac.new(key, f"{head}.{claims}".encode(), hashlib.sha256).digest()
assert base64.urlsafe_b64decode(sig + "=") == mac
# the generic HS256 key: sign, verify
assert HS256Key(key).verify(HS256Key(key).sign({"uid": 7})).claims["uid"] == 7
print("create + verify: ok", cred.uid, cred.gid)

bad = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
try:
    verifier.verify(bad)
except slurmauth_fast.errors.SlurmAuthError:
    print("tampered token: refused")
else:
    raise AssertionError("a tampered token verified")

batch = verifier.verify_many([token, bad])
assert list(batch.status)[0] == 0 and list(batch.status)[1] != 0
print("verify_many: ok")

# a whole RPC frame: token + K12 body hash
body = struct.pack(">I", 0) + b"smoke body"
payload = body_hash_payload(body, REQUEST_PING, HASH_K12)
tok = tokens.create_credential(ring, uid=1000, gid=1000, host="login1", ruid=0, payload=payload)
frame = pack_frame(REQUEST_PING, body, credential=tok)
rpc = verify_rpc(frame, verifier)
assert rpc.credential.uid == 1000 and bytes(rpc.frame.body) == body
altered = bytearray(frame)
altered[-1] ^= 1
try:
    verify_rpc(bytes(altered), verifier)
except slurmauth_fast.errors.SlurmAuthError:
    print("verify_rpc: ok; altered body refused")
else:
    raise AssertionError("a frame with an altered body verified")
print("wheel smoke: OK")
