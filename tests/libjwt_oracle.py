"""Debian's libjwt (the library Slurm links) through ctypes: an independent
oracle that mints tokens the way Slurm's create_internal() does and decodes
ours. Tests using it skip when libjwt is not installed (CI installs libjwt-dev)."""
from __future__ import annotations

import ctypes
import json
import os
from typing import Any, Dict, Optional, Tuple

import pytest

LIBJWT_PATH = "/usr/lib/x86_64-linux-gnu/libjwt.so.0"
JWT_ALG_HS256 = 1  # jwt_alg_t: JWT_ALG_NONE = 0, JWT_ALG_HS256 = 1 (/usr/include/jwt.h)

_lib: Optional[ctypes.CDLL] = None
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]


def libjwt() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        if not os.path.exists(LIBJWT_PATH):
            pytest.skip(f"libjwt not installed ({LIBJWT_PATH}); apt-get install libjwt-dev")
        lib = ctypes.CDLL(LIBJWT_PATH)
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        lib.jwt_new.argtypes = [ctypes.POINTER(vp)]
        lib.jwt_free.argtypes = [vp]
        lib.jwt_set_alg.argtypes = [vp, ctypes.c_int, cp, ctypes.c_int]
        lib.jwt_add_grant.argtypes = [vp, cp, cp]
        lib.jwt_add_grant_int.argtypes = [vp, cp, ctypes.c_long]
        lib.jwt_add_grants_json.argtypes = [vp, cp]
        lib.jwt_add_header.argtypes = [vp, cp, cp]
        lib.jwt_encode_str.argtypes = [vp]
        lib.jwt_encode_str.restype = vp
        lib.jwt_decode.argtypes = [ctypes.POINTER(vp), cp, cp, ctypes.c_int]
        lib.jwt_get_grants_json.argtypes = [vp, cp]
        lib.jwt_get_grants_json.restype = vp
        lib.jwt_get_headers_json.argtypes = [vp, cp]
        lib.jwt_get_headers_json.restype = vp
        lib.jwt_Base64encode.argtypes = [cp, cp, ctypes.c_int]
        _lib = lib
    return _lib


def _take_str(p: Optional[int]) -> str:
    assert p, "libjwt returned NULL"
    s = ctypes.string_at(p).decode("utf-8")
    _libc.free(p)
    return s


def slurm_create_internal(key: bytes, *, kid: Optional[str], context: str, uid: int, gid: int,
                          r_uid: int, host: str, iat: int, lifespan: int, version: int,
                          cluster: Optional[str] = None, data: Optional[bytes] = None,
                          extra: Optional[str] = None) -> str:
    """Mint a credential with libjwt, making the same calls in the same order
    as Slurm's auth/slurm create_internal()."""
    lib = libjwt()
    jwt = ctypes.c_void_p()
    assert lib.jwt_new(ctypes.byref(jwt)) == 0
    try:
        def ok(rc: int, what: str) -> None:
            assert rc == 0, f"libjwt failed on {what}"
        ok(lib.jwt_add_grant_int(jwt, b"iat", iat), "iat")
        ok(lib.jwt_add_grant_int(jwt, b"exp", iat + lifespan), "exp")
        ok(lib.jwt_add_grant_int(jwt, b"ver", version), "ver")
        ok(lib.jwt_add_grant_int(jwt, b"ruid", r_uid), "ruid")
        ok(lib.jwt_add_grant(jwt, b"context", context.encode()), "context")
        if cluster is not None:
            ok(lib.jwt_add_grant(jwt, b"cluster", cluster.encode()), "cluster")
        if extra is not None:
            ok(lib.jwt_add_grants_json(jwt, extra.encode()), "extra")
        ok(lib.jwt_add_grant_int(jwt, b"uid", uid), "uid")
        ok(lib.jwt_add_grant_int(jwt, b"gid", gid), "gid")
        ok(lib.jwt_add_grant(jwt, b"host", host.encode()), "host")
        if data:
            buf = ctypes.create_string_buffer(2 * len(data) + 4)
            lib.jwt_Base64encode(buf, data, len(data))
            ok(lib.jwt_add_grant(jwt, b"payload", buf.value), "payload")
        if kid is not None:
            ok(lib.jwt_add_header(jwt, b"kid", kid.encode()), "kid")
        ok(lib.jwt_set_alg(jwt, JWT_ALG_HS256, key, len(key)), "alg")
        return _take_str(lib.jwt_encode_str(jwt))
    finally:
        lib.jwt_free(jwt)


def encode(key: bytes, *, ints: Dict[str, int] = {}, strs: Dict[str, str] = {},
           json_grants: Optional[str] = None, headers: Dict[str, str] = {}) -> str:
    """Mint an arbitrary HS256 token with libjwt."""
    lib = libjwt()
    jwt = ctypes.c_void_p()
    assert lib.jwt_new(ctypes.byref(jwt)) == 0
    try:
        for k, v in ints.items():
            assert lib.jwt_add_grant_int(jwt, k.encode(), v) == 0
        for k, s in strs.items():
            assert lib.jwt_add_grant(jwt, k.encode(), s.encode()) == 0
        if json_grants is not None:
            assert lib.jwt_add_grants_json(jwt, json_grants.encode()) == 0
        for k, s in headers.items():
            assert lib.jwt_add_header(jwt, k.encode(), s.encode()) == 0
        assert lib.jwt_set_alg(jwt, JWT_ALG_HS256, key, len(key)) == 0
        return _take_str(lib.jwt_encode_str(jwt))
    finally:
        lib.jwt_free(jwt)


def decode(token: str, key: bytes) -> Optional[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """libjwt's jwt_decode with the key: (header, grants), or None when it refuses."""
    lib = libjwt()
    jwt = ctypes.c_void_p()
    if lib.jwt_decode(ctypes.byref(jwt), token.encode(), key, len(key)) != 0:
        return None
    try:
        grants = json.loads(_take_str(lib.jwt_get_grants_json(jwt, None)))
        header = json.loads(_take_str(lib.jwt_get_headers_json(jwt, None)))
        return header, grants
    finally:
        lib.jwt_free(jwt)
