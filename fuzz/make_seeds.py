#!/usr/bin/env python3
"""Write the small seed corpora under fuzz/corpus/ from real-shaped inputs.

Tokens are auth/slurm credentials exactly as Slurm writes them (libjwt
header, sorted compact claims, padded base64 payload = body-hash data),
signed with the harnesses' fixed key, plus their near misses (wrong tag,
padding, alg none, a kid). Re-run after changing the harnesses:
``python fuzz/make_seeds.py`` (deterministic: same files every time; a fuzzer-found
input committed as ``regress-*`` beside them is kept).
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Dict

from slurmauth_fast import HS256Key, rpc, sack
from slurmauth_fast.bodyhash import HASH_K12, HASH_SHA3, body_hash_payload
from slurmauth_fast.jsonutil import dumps_compact

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
FUZZ_KEY = b"slurmauth-fast fuzzing key, 32+ bytes long"

HDR = {"alg": "HS256", "typ": "JWT"}
CLAIMS = {"iat": 1764000000, "exp": 1764000060, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
          "cluster": "cluster1", "uid": 1000, "gid": 1000, "host": "login01",
          # type byte 4 (SHA3) + SHA3-256(body || msg_type) for an empty REQUEST_PING body
          "payload": base64.b64encode(b"\x04" + hashlib.sha3_256(b"\x03\xf0").digest()).decode()}
SACK = dict(CLAIMS, context="sack", ruid=1000,
            id={"name": "alice", "gecos": "Alice", "dir": "/home/alice", "shell": "/bin/bash",
                "groups": {"alice": 1000, "hpc": 2000}})
LAUNCH = dict(CLAIMS, context="launch", payload=base64.b64encode(bytes(range(200))).decode(),
              id={"name": "bob", "gecos": "", "dir": "/home/bob", "shell": "/bin/sh", "gids": [1001, 27]})


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tokens() -> Dict[str, bytes]:
    key = HS256Key(FUZZ_KEY)
    good = {
        "auth": key.sign(CLAIMS),
        "auth_kid": key.sign(CLAIMS, {"kid": "2026-key"}),
        "sack_id_groups": key.sign(SACK),
        "launch_id_gids": key.sign(LAUNCH),
        "no_payload": key.sign({k: v for k, v in CLAIMS.items() if k != "payload"}),
    }
    out = {name: tok.encode() for name, tok in good.items()}
    h, c, s = good["auth"].split(".")
    out["bad_tag"] = f"{h}.{c}.{s[:-2]}AA".encode()
    out["padded"] = f"{h}=.{c}.{s}".encode()
    none_hdr = b64u(b'{"alg":"none"}')
    out["alg_none"] = f"{none_hdr}.{c}.".encode()
    out["two_segments"] = f"{h}.{c}".encode()
    out["exp_string"] = key.sign(dict(CLAIMS, exp="1764000060")).encode()
    out["dup_claim"] = key.sign_raw(dumps_compact(HDR), b'{"uid":0,"uid":1000}').encode()
    return out


def frames(key: bytes = b"slurmauth_fast fuzz key (not a secret)") -> Dict[str, bytes]:
    """Real-shaped RPC frames (rpc.pack_frame), keyed by name. The default key is
    the one sa_fuzz_rpc_frame checks tags with (csrc/fuzz.c)."""
    wire_key = HS256Key(key)
    ping, rc_body = 1008, b"\x00\x00\x00\x00"

    def cred(body: bytes, msg_type: int, hash_type: int = HASH_K12) -> str:
        payload = body_hash_payload(body, msg_type, hash_type)
        return wire_key.sign(dict(CLAIMS, exp=1764000090, payload=base64.b64encode(payload).decode()))

    return {
        "slurm_ping": rpc.pack_frame(ping, b"", credential=cred(b"", ping)),
        "slurm_rc_sha3": rpc.pack_frame(8001, rc_body, credential=cred(rc_body, 8001, HASH_SHA3)),
        "munge": rpc.pack_frame(ping, b"", credential="MUNGE:AwQDAAAbcdef:", plugin=rpc.AUTH_MUNGE),
        "jwt_user": rpc.pack_frame(ping, b"", credential=wire_key.sign({"sun": "alice"}),
                                   plugin=rpc.AUTH_JWT, username="alice"),
        "no_auth": rpc.pack_frame(8001, rc_body, flags=rpc.NO_AUTH_CRED),
        "forward_addrs": rpc.pack_frame(ping, b"", credential=cred(b"", ping), flags=rpc.PACK_ADDRS,
                                        forward=rpc.Forward(cnt=4, nodelist="n[1-4]", timeout=10000, tree_width=50,
                                                            net_cred="netcred", tree_depth=2),
                                        orig_addr=("10.0.0.1", 6817)),
        "ipv6": rpc.pack_frame(ping, b"", credential=cred(b"", ping), orig_addr=("fe80::1", 6818)),
        "old_version": rpc.pack_frame(ping, b"", credential=cred(b"", ping), version=0x2A00),
    }


def authjwt_seeds() -> Dict[str, bytes]:
    """fuzz_authjwt: byte 0 even = raw token, odd = sign what follows (byte 1 =
    header length); bit 1 = client ids + userclaimfield "email"."""
    key = HS256Key(FUZZ_KEY)
    hdr = dumps_compact(HDR)
    scontrol = {"exp": 1764000090, "iat": 1764000020, "sun": "root"}
    ids = dict(scontrol, sun="alice", uid=1000, gid=1000,
               id={"name": "alice", "gecos": "", "dir": "/home/alice", "shell": "/bin/sh", "gids": [1000]})
    out: Dict[str, bytes] = {}
    for name, claims, mode in (("scontrol", scontrol, 0), ("ids", ids, 2),
                               ("email", {"exp": 1764000090, "iat": 1, "email": "a\\u00e9"}, 2)):
        body = dumps_compact(claims)
        out[f"raw_{name}"] = bytes([mode]) + key.sign_raw(hdr, body).encode()
        out[f"signed_{name}"] = bytes([mode | 1, len(hdr)]) + hdr + body
    rs_hdr = b'{"alg":"RS256","kid":"k1"}'
    out["raw_rs256"] = b"\x00" + b64u(rs_hdr).encode() + b"." + b64u(dumps_compact(scontrol)).encode() + \
        b"." + b64u(bytes(256)).encode()
    esc_hdr = b'{"alg":"HS\\u0032\\u00356"}'
    out["signed_escapes"] = bytes([3, len(esc_hdr)]) + esc_hdr + \
        b'{"exp":1764000090,"iat":0,"s\\u0075n":"r\\u00e9","x":[1e5,{"a":null}]}'
    return out


def write(name: str, files: Dict[str, bytes]) -> None:
    """Replace the generated seeds of one harness; files named ``regress-*`` (inputs of
    bugs the fuzzers found, committed by hand) are kept."""
    d = CORPUS / name
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        if not old.name.startswith("regress-"):
            old.unlink()
    for fname, data in files.items():
        (d / fname).write_bytes(data)


def main() -> None:
    toks = tokens()
    write("fuzz_jws", toks)
    b64: Dict[str, bytes] = {"payload_std": CLAIMS["payload"].encode(), "empty": b""}
    for name, tok in list(toks.items())[:3]:
        for i, seg in enumerate(tok.split(b".")):
            b64[f"{name}_seg{i}"] = seg
    b64["pad1"], b64["pad2"] = b"QUI=", b"QQ=="
    write("fuzz_base64", b64)
    # sign_verify: first byte is the header/claims split point.
    sv: Dict[str, bytes] = {}
    for name, claims in (("auth", CLAIMS), ("sack", SACK), ("launch", LAUNCH)):
        hdr = dumps_compact(HDR)
        sv[name] = bytes([len(hdr) - 1]) + hdr + dumps_compact(claims)
    write("fuzz_sign_verify", sv)
    # fuzz_slurmcred: byte 0 even = raw token; odd = sign what follows: byte 1 odd = canonical
    # k-current header + claims, even = header length - 1, header, claims.
    key = HS256Key(FUZZ_KEY)
    cur = {"alg": "HS256", "kid": "k-current", "typ": "JWT"}
    live = dict(CLAIMS, iat=1764000020, exp=1764000090)
    sc: Dict[str, bytes] = {}
    for name, claims in (("auth", live), ("sack", dict(SACK, iat=1764000020, exp=1764000090, ruid=1000)),
                         ("launch", dict(LAUNCH, iat=1764000020, exp=1764000090))):
        sc[f"raw_{name}"] = b"\x00" + key.sign(claims, {"kid": "k-current"}).encode()
        sc[f"canon_{name}"] = b"\x01\x01" + dumps_compact(claims)
        hdr = dumps_compact(cur)
        sc[f"hdr_{name}"] = b"\x01\x00" + bytes([len(hdr) - 1]) + hdr + dumps_compact(claims)
    sc["raw_old_kid"] = b"\x00" + key.sign(live, {"kid": "k-old"}).encode()
    sc["raw_no_kid"] = b"\x00" + key.sign(live).encode()
    write("fuzz_slurmcred", sc)
    write("fuzz_authjwt", authjwt_seeds())
    # atheris: first byte selects the target (see fuzz/py_fuzz.py TARGETS).
    py: Dict[str, bytes] = {}
    for name, tok in toks.items():
        py[f"raw_{name}"] = b"\x00" + tok
        py[f"cred_{name}"] = b"\x03" + tok
    for name, claims in (("auth", CLAIMS), ("sack", SACK), ("launch", LAUNCH)):
        hdr, body = dumps_compact(HDR), dumps_compact(claims)
        py[f"signed_{name}"] = b"\x01" + bytes([len(hdr) - 1]) + hdr + body
        py[f"json_{name}"] = b"\x02" + body
        py[f"claims_{name}"] = b"\x04" + body
    for name, text in (("host", b"login01"), ("utf8", "n\u00f6de-\u4e2d".encode()), ("escape", b'a"\\b')):
        py[f"sign_{name}"] = b"\x06" + text
    for name, claims in (("sun", {"iat": 1764000000, "exp": 1764000060, "sun": "root"}),
                         ("ids", {"iat": 1764000000, "exp": 1764000060, "sun": "alice", "uid": 1000,
                                  "gid": 1000, "id": SACK["id"]})):
        py[f"jwt_{name}"] = b"\x07" + dumps_compact(claims)
    # SACK bodies only: after uint16 version, uint32 length, uint32 rpc
    py["sack_create"] = b"\x08\x00" + sack.encode_create_request(1000, b"\x02" + bytes(32))[10:]
    py["sack_verify"] = b"\x08\x01" + sack.encode_verify_request(HS256Key(FUZZ_KEY).sign(CLAIMS))[10:]
    for name, frame in frames(key=FUZZ_KEY).items():
        py[f"frame_{name}"] = b"\x05" + frame
    # verify, verify_many and verify_rpc on the same claims (with and without use_client_ids)
    for name, claims in (("auth", CLAIMS), ("sack", SACK),
                         ("bad_id_bad_hash", dict(CLAIMS, id={}, payload="CQAA"))):
        py[f"batch_frame_{name}"] = b"\x09" + dumps_compact(claims)
    write("py", py)
    # SACK requests as a client sends them: fuzz_sack (C pieces) reads the stream as is;
    # py_sack (the kiosk's reader) takes byte 0 = k, k chunk sizes, then the stream.
    live_sack = dict(SACK, iat=1764000020, exp=1764000090, ruid=1000)
    sk: Dict[str, bytes] = {
        "create": sack.encode_create_request(1000, b"\x02" + bytes(32)),
        "create_any_nodata": sack.encode_create_request(4294967295, b""),
        "verify_sack": sack.encode_verify_request(key.sign(live_sack)),
        "verify_auth": sack.encode_verify_request(key.sign(live)),
        "verify_then_more": sack.encode_verify_request(key.sign(live)) + b"\x2d\x00",
    }
    write("fuzz_sack", sk)
    write("py_sack", {name: bytes([3, 1, 9, 64]) + req for name, req in sk.items()} |
          {f"{name}_whole": b"\x00" + req for name, req in sk.items()})
    fr = frames()
    # fuzz_rpc: data[0] bit0 = length prefix (pack_frame writes one by default)
    write("fuzz_rpc", {name: b"\x01" + frame for name, frame in fr.items()})
    # fuzz_pack: byte 0 = op count, then ops (0 u16, 1 u32, 2 u64, 3 packmem, 4 packstr), then data
    write("fuzz_pack", {name: bytes([7, 1, 0, 0, 0, 1, 4, 3]) + frame for name, frame in fr.items()})
    print(f"wrote seeds under {CORPUS}")


if __name__ == "__main__":
    main()
