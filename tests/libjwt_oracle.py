"""libjwt (the library Slurm itself uses) through ctypes, as an independent
issuer and verifier in tests. Debian package libjwt0/libjwt-dev (1.10.x API).

``load()`` returns None when the library is absent; tests then skip with
:data:`MISSING`.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
from typing import Any, Dict, Iterable, Optional, Tuple, Union

MISSING = ("libjwt is not installed (Debian package libjwt-dev: "
           "/usr/lib/x86_64-linux-gnu/libjwt.so.0); .ci/run installs it")

# jwt_alg_t from <jwt.h>
JWT_ALG_NONE, JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512, JWT_ALG_RS256 = 0, 1, 2, 3, 4

_CANDIDATES = ("libjwt.so.0", "/usr/lib/x86_64-linux-gnu/libjwt.so.0")

Grant = Tuple[str, Union[int, str]]


class LibJWT:
    def __init__(self, lib: ctypes.CDLL) -> None:
        P, S, I, L = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_long
        self._lib = lib
        sig = {
            "jwt_new": (I, [ctypes.POINTER(P)]),
            "jwt_free": (None, [P]),
            "jwt_set_alg": (I, [P, I, S, I]),
            "jwt_add_grant": (I, [P, S, S]),
            "jwt_add_grant_int": (I, [P, S, L]),
            "jwt_add_grants_json": (I, [P, S]),
            "jwt_add_header": (I, [P, S, S]),
            "jwt_encode_str": (P, [P]),
            "jwt_decode": (I, [ctypes.POINTER(P), S, S, I]),
            "jwt_get_grant": (S, [P, S]),
            "jwt_get_grant_int": (L, [P, S]),
            "jwt_get_grants_json": (P, [P, S]),
            "jwt_get_header": (S, [P, S]),
            "jwt_get_headers_json": (P, [P, S]),
            "jwt_Base64encode": (I, [S, S, I]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args
        self._libc = ctypes.CDLL(None)
        self._libc.free.argtypes = [P]

    def _take_str(self, p: Optional[int]) -> str:
        assert p, "libjwt returned NULL"
        try:
            return ctypes.string_at(p).decode("utf-8")
        finally:
            self._libc.free(p)

    def encode(self, grants: Iterable[Grant], *, alg: int = JWT_ALG_HS256, key: bytes = b"",
               headers: Iterable[Tuple[str, str]] = (), grants_json: Optional[str] = None) -> str:
        """Build a token the way Slurm's auth_p_token_generate does: grants added
        one by one (ints with jwt_add_grant_int, strings with jwt_add_grant)."""
        j = ctypes.c_void_p()
        assert self._lib.jwt_new(ctypes.byref(j)) == 0
        try:
            for name, value in grants:
                if isinstance(value, int):
                    rc = self._lib.jwt_add_grant_int(j, name.encode(), value)
                else:
                    rc = self._lib.jwt_add_grant(j, name.encode(), value.encode("utf-8"))
                assert rc == 0, f"jwt_add_grant {name}: {rc}"
            if grants_json is not None:
                assert self._lib.jwt_add_grants_json(j, grants_json.encode("utf-8")) == 0
            for name, value in headers:
                assert self._lib.jwt_add_header(j, name.encode(), value.encode()) == 0
            assert self._lib.jwt_set_alg(j, alg, key, len(key)) == 0, "jwt_set_alg"
            return self._take_str(self._lib.jwt_encode_str(j))
        finally:
            self._lib.jwt_free(j)

    def decode(self, token: str, key: bytes) -> Tuple[int, Optional[Dict[str, Any]]]:
        """jwt_decode with a key: (0, grants) when libjwt accepts the token,
        (errno, None) when it refuses it."""
        j = ctypes.c_void_p()
        rc = self._lib.jwt_decode(ctypes.byref(j), token.encode("ascii"), key, len(key))
        if rc:
            return rc, None
        try:
            return 0, json.loads(self._take_str(self._lib.jwt_get_grants_json(j, None)))
        finally:
            self._lib.jwt_free(j)


    def decode_full(self, token: str, key: bytes) -> Optional[Tuple[Dict[str, Any], Dict[str, Any]]]:
        """jwt_decode with a key: (header, grants), or None when libjwt refuses."""
        j = ctypes.c_void_p()
        if self._lib.jwt_decode(ctypes.byref(j), token.encode("ascii"), key, len(key)):
            return None
        try:
            header = json.loads(self._take_str(self._lib.jwt_get_headers_json(j, None)))
            return header, json.loads(self._take_str(self._lib.jwt_get_grants_json(j, None)))
        finally:
            self._lib.jwt_free(j)

    def slurm_create_internal(self, key: bytes, *, kid: Optional[str], context: str, uid: int,
                              gid: int, r_uid: int, host: str, iat: int, lifespan: int,
                              version: int, cluster: Optional[str] = None,
                              data: Optional[bytes] = None, extra: Optional[str] = None) -> str:
        """Mint an auth/slurm credential making the same libjwt calls, in the
        same order, as Slurm's create_internal(): iat, exp, ver, ruid, context,
        [cluster], [extra grants JSON], uid, gid, host, [payload via
        jwt_Base64encode], [kid header], jwt_set_alg(HS256)."""
        grants: list = [("iat", iat), ("exp", iat + lifespan), ("ver", version), ("ruid", r_uid),
                        ("context", context)]
        if cluster is not None:
            grants.append(("cluster", cluster))
        j = ctypes.c_void_p()
        assert self._lib.jwt_new(ctypes.byref(j)) == 0
        try:
            def add(name: str, value: Union[int, str]) -> None:
                if isinstance(value, int):
                    rc = self._lib.jwt_add_grant_int(j, name.encode(), value)
                else:
                    rc = self._lib.jwt_add_grant(j, name.encode(), value.encode("utf-8"))
                assert rc == 0, f"jwt_add_grant {name}: {rc}"
            for name, value in grants:
                add(name, value)
            if extra is not None:
                assert self._lib.jwt_add_grants_json(j, extra.encode("utf-8")) == 0
            add("uid", uid)
            add("gid", gid)
            add("host", host)
            if data:
                buf = ctypes.create_string_buffer(2 * len(data) + 4)
                self._lib.jwt_Base64encode(buf, data, len(data))
                assert self._lib.jwt_add_grant(j, b"payload", buf.value) == 0
            if kid is not None:
                assert self._lib.jwt_add_header(j, b"kid", kid.encode("utf-8")) == 0
            assert self._lib.jwt_set_alg(j, JWT_ALG_HS256, key, len(key)) == 0
            return self._take_str(self._lib.jwt_encode_str(j))
        finally:
            self._lib.jwt_free(j)


def load() -> Optional[LibJWT]:
    for name in _CANDIDATES + tuple(filter(None, [ctypes.util.find_library("jwt")])):
        try:
            return LibJWT(ctypes.CDLL(name))
        except OSError:
            continue
    return None
