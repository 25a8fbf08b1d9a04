"""The fuzz entry point under AddressSanitizer + UndefinedBehaviorSanitizer:
a few hundred valid, mutated and random frames through sa_fuzz_rpc_frame,
built with clang from the real csrc/ sources. Any finding aborts the run."""
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import cffi
import pytest

from slurmauth_fast import HS256Key
from slurmauth_fast._bindings import lib
from slurmauth_fast.rpc import (
    AUTH_JWT, AUTH_MUNGE, AUTH_NONE, AUTH_SLURM, HASH_K12, HASH_NONE, HASH_SHA3, NO_AUTH_CRED,
    PACK_ADDRS, SLURMDBD_CONNECTION, Forward, body_hash_payload, pack_frame,
)

ROOT = Path(__file__).resolve().parent.parent
FUZZ_KEY = b"slurmauth_fast fuzz key (not a secret)"


def seed_frames(rng):
    """(selector byte, frame) pairs reaching every branch of the receive path."""
    key = HS256Key(FUZZ_KEY)
    out = []
    for i in range(60):
        body = rng.randbytes(rng.choice([0, 1, 4, 100, 9000]))
        msg_type = rng.choice([1008, 2009, 1401, 8001])
        payload = body_hash_payload(body, msg_type, rng.choice([HASH_K12, HASH_SHA3, HASH_NONE]))
        plugin = rng.choice([AUTH_SLURM, AUTH_SLURM, AUTH_MUNGE, AUTH_JWT, AUTH_NONE])
        flags = rng.choice([0, PACK_ADDRS, NO_AUTH_CRED, SLURMDBD_CONNECTION])
        signer = key if i % 3 else HS256Key(b"some other key")
        token = signer.sign({"uid": i, "payload": payload.hex()})
        cred = {AUTH_SLURM: payload.decode("latin-1") if i % 5 == 0 else token,
                AUTH_MUNGE: "MUNGE:AwQDAA:", AUTH_JWT: token, AUTH_NONE: None}[plugin]
        if flags & NO_AUTH_CRED:
            cred = None
        cred = cred.replace("\0", "") if cred else cred
        frame = pack_frame(
            msg_type, body, credential=cred, plugin=plugin, flags=flags,
            username="bob" if plugin == AUTH_JWT and not flags & NO_AUTH_CRED else None,
            forward=Forward(2, "n[1-2]", 10, 2, 1, "nc" if flags & PACK_ADDRS else None) if i % 4 == 0 else None,
            orig_addr=rng.choice([None, ("10.1.2.3", 6817), ("fe80::2", 6818)]),
            length_prefix=bool(i % 2))
        sel = (i % 2) | ((1 if flags & SLURMDBD_CONNECTION else 0) << 1) | (rng.randrange(4) << 2)
        out.append(bytes([sel]) + frame)
    return out


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        i = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            del b[i:]
        elif op == 2:
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and len(b) > i + 4:
            b[i:i + 4] = struct.pack(">I", rng.choice([0, 1, 0xFFFFFFFF, 0x40000000, 0x40000001, len(b)]))
        elif b:
            b[i] = rng.choice([0, 0xFF, ord("."), 0x80])
    return bytes(b)


@pytest.fixture(scope="module")
def fuzz_lib(tmp_path_factory):
    """csrc/ with csrc/fuzz.c (which the production extension leaves out),
    as a shared library opened through cffi's ABI mode."""
    if not shutil.which("gcc"):
        pytest.skip("gcc not installed")
    so = tmp_path_factory.mktemp("fuzzlib") / "libsa_fuzz.so"
    srcs = sorted(str(p) for p in (ROOT / "csrc").glob("*.c"))
    build = subprocess.run(["gcc", "-std=c99", "-D_DEFAULT_SOURCE", "-O1", "-shared", "-fPIC",
                            "-I", str(ROOT / "csrc"), *srcs, "-o", str(so)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    ffi = cffi.FFI()
    ffi.cdef("int sa_fuzz_rpc_frame(const uint8_t *data, size_t len);")
    return ffi.dlopen(str(so))


def test_fuzz_entry_point_agrees_with_python_on_seeds(fuzz_lib):
    # the native entry point parses what pack_frame makes (sanity for the harness)
    rng = random.Random(1)
    for rec in seed_frames(rng):
        assert fuzz_lib.sa_fuzz_rpc_frame(rec, len(rec)) not in (
            lib.SA_E_RPC_PREFIX_SHORT, lib.SA_E_RPC_TRUNCATED, lib.SA_E_RPC_HEADER_SHORT)
    assert fuzz_lib.sa_fuzz_rpc_frame(b"", 0) == lib.SA_E_ARG


def test_the_production_extension_has_no_fuzz_entry_point():
    assert not hasattr(lib, "sa_fuzz_rpc_frame")


@pytest.mark.skipif(not shutil.which("clang"), reason="clang not installed (Debian package clang)")
def test_asan_ubsan_over_mutated_frames(tmp_path):
    exe = tmp_path / "fuzz_driver"
    srcs = sorted(str(p) for p in (ROOT / "csrc").glob("*.c")) + [str(ROOT / "tests/fuzz/standalone_driver.c")]
    build = subprocess.run(
        ["clang", "-std=c99", "-D_DEFAULT_SOURCE", "-g", "-O1", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", str(ROOT / "csrc"),
         *srcs, "-o", str(exe)], capture_output=True, text=True)
    if build.returncode and "cannot find" in build.stderr and "clang_rt" in build.stderr:
        pytest.skip("clang sanitizer runtime missing (Debian package libclang-rt-14-dev)")
    assert build.returncode == 0, build.stderr

    rng = random.Random(20261125)
    seeds = seed_frames(rng)
    records = list(seeds)
    for _ in range(500):
        records.append(mutate(rng, rng.choice(seeds)))
    for _ in range(100):
        records.append(rng.randbytes(rng.randint(0, 64)))
    path = tmp_path / "records"
    path.write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in records))

    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([str(exe), str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    assert f"{len(records)} records" in run.stdout
    assert "runtime error" not in run.stderr
