"""libmunge (``munge.h``), through cffi's ABI mode: its own FFI object, the
library opened on first use by :mod:`slurmauth_fast.munge` (the rest of the
package works without it). Each call builds and destroys its own
``munge_ctx_t``: libmunge contexts are not thread-safe."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import cffi

from ..exceptions import MungeError, MungeInternalError, MungeNoMemoryError, munge_error_class

_CDEF = """
typedef struct munge_ctx *munge_ctx_t;
typedef unsigned int uid_t;
typedef unsigned int gid_t;
typedef long time_t;  /* glibc LP64 and classic ILP32 ABIs */

int munge_encode(char **cred, munge_ctx_t ctx, const void *buf, int len);
int munge_decode(const char *cred, munge_ctx_t ctx, void **buf, int *len,
                 uid_t *uid, gid_t *gid);
const char *munge_strerror(int e);

munge_ctx_t munge_ctx_create(void);
void munge_ctx_destroy(munge_ctx_t ctx);
const char *munge_ctx_strerror(munge_ctx_t ctx);
int munge_ctx_get(munge_ctx_t ctx, int opt, ...);
int munge_ctx_set(munge_ctx_t ctx, int opt, ...);

int munge_enum_is_valid(int type, int val);

void free(void *ptr);
void *memset(void *s, int c, size_t n);
"""

#: libmunge's own FFI object (ABI mode; independent of slurmauth_fast._native).
ffi = cffi.FFI()
ffi.cdef(_CDEF)

EMUNGE_SUCCESS = 0

# munge.h: munge_opt_t
OPT_CIPHER_TYPE = 0
OPT_MAC_TYPE = 1
OPT_ZIP_TYPE = 2
OPT_REALM = 3
OPT_TTL = 4
OPT_ADDR4 = 5
OPT_ENCODE_TIME = 6
OPT_DECODE_TIME = 7
OPT_SOCKET = 8
OPT_UID_RESTRICTION = 9
OPT_GID_RESTRICTION = 10

#: The C type of each option's value (munge_ctx_set / munge_ctx_get).
OPT_TYPES = {OPT_CIPHER_TYPE: "int", OPT_MAC_TYPE: "int", OPT_ZIP_TYPE: "int",
             OPT_REALM: "char *", OPT_TTL: "int", OPT_SOCKET: "char *",
             OPT_UID_RESTRICTION: "uid_t", OPT_GID_RESTRICTION: "gid_t"}

Libs = Tuple[Any, Any]


def open_libs(name: str) -> Libs:
    """(libmunge, libc) opened by name; OSError when libmunge is absent."""
    return ffi.dlopen(name), ffi.dlopen(None)  # None: the C library already linked in


def strerror(libs: Libs, code: int) -> Optional[str]:
    s = libs[0].munge_strerror(int(code))
    return ffi.string(s).decode("utf-8", "replace") if s != ffi.NULL else None


def enum_is_valid(libs: Libs, kind: int, value: int) -> bool:
    return bool(libs[0].munge_enum_is_valid(kind, int(value)))


def _wipe_free(libc: Any, ptr: Any, n: int) -> None:
    """Zero ``n`` bytes at a libmunge-allocated ``ptr`` and free it."""
    if ptr != ffi.NULL:
        if n > 0:
            libc.memset(ptr, 0, n)
        libc.free(ptr)


def error(libs: Libs, ctx: Any, err: int, what: str) -> MungeError:
    """The exception for munge_err_t ``err``, with munged's detailed message."""
    lib = libs[0]
    detail = lib.munge_ctx_strerror(ctx) if ctx is not None and ctx != ffi.NULL else ffi.NULL
    if detail == ffi.NULL:
        detail = lib.munge_strerror(err)
    text = ffi.string(detail).decode("utf-8", "replace") if detail != ffi.NULL else f"error {err}"
    return munge_error_class(err)(f"{what}: {text} (munge error {err})", munge_errno=err)


def new_ctx(libs: Libs, options: Sequence[Tuple[int, Any]]) -> Any:
    """A fresh munge_ctx_t with these (option, value) settings; the caller
    destroys it with :func:`destroy`."""
    lib = libs[0]
    ctx = lib.munge_ctx_create()
    if ctx == ffi.NULL:
        raise MungeNoMemoryError("munge_ctx_create failed")
    try:
        for opt, value in options:
            ctype = OPT_TYPES[opt]
            arg = ffi.new("char[]", value.encode()) if ctype == "char *" else ffi.cast(ctype, value)
            err = lib.munge_ctx_set(ctx, opt, arg)
            if err != EMUNGE_SUCCESS:
                raise error(libs, ctx, err, f"munge_ctx_set(option {opt})")
        return ctx
    except BaseException:
        lib.munge_ctx_destroy(ctx)
        raise


def destroy(libs: Libs, ctx: Any) -> None:
    libs[0].munge_ctx_destroy(ctx)


def encode(libs: Libs, ctx: Any, payload: Any) -> str:
    """munge_encode of ``payload`` (bytes-like); the credential string. The
    buffer libmunge returns is wiped before it is freed."""
    lib, libc = libs
    buf = ffi.from_buffer(payload)
    n = len(buf)
    cred_p = ffi.new("char **")
    try:
        err = lib.munge_encode(cred_p, ctx, buf if n else ffi.NULL, n)
        if err != EMUNGE_SUCCESS:
            raise error(libs, ctx, err, "munge encode failed")
        if cred_p[0] == ffi.NULL:  # pragma: no cover - libmunge always sets it on success
            raise MungeInternalError("munge_encode returned no credential")
        return ffi.string(cred_p[0]).decode("ascii")
    finally:
        if cred_p[0] != ffi.NULL:
            _wipe_free(libc, cred_p[0], len(ffi.string(cred_p[0])))


def decode(libs: Libs, ctx: Any, raw: bytes) -> Tuple[int, int, int, bytes]:
    """munge_decode of a credential string: (munge_err_t, uid, gid, payload);
    the payload buffer libmunge returns is wiped before it is freed."""
    lib, libc = libs
    buf_p = ffi.new("void **")
    len_p = ffi.new("int *")
    uid_p = ffi.new("uid_t *")
    gid_p = ffi.new("gid_t *")
    try:
        err = lib.munge_decode(raw, ctx, buf_p, len_p, uid_p, gid_p)
        payload = b""
        if buf_p[0] != ffi.NULL and len_p[0] > 0:
            payload = ffi.unpack(ffi.cast("char *", buf_p[0]), len_p[0])
        return int(err), int(uid_p[0]), int(gid_p[0]), payload
    finally:
        _wipe_free(libc, buf_p[0], max(len_p[0], 0))


def _get(libs: Libs, ctx: Any, opt: int, ctype: str) -> Any:
    p = ffi.new(ctype + " *")
    err = libs[0].munge_ctx_get(ctx, opt, p)
    if err != EMUNGE_SUCCESS:
        raise error(libs, ctx, err, f"munge_ctx_get(option {opt})")
    return p


def decoded_fields(libs: Libs, ctx: Any) -> Dict[str, Any]:
    """What munge_decode left in the context: origin (4 bytes, network
    order), uid/gid restrictions, encode/decode times, ttl, cipher, mac, zip."""
    return {
        "origin": bytes(ffi.buffer(_get(libs, ctx, OPT_ADDR4, "uint32_t"))),
        "uid_restriction": int(_get(libs, ctx, OPT_UID_RESTRICTION, "uid_t")[0]),
        "gid_restriction": int(_get(libs, ctx, OPT_GID_RESTRICTION, "gid_t")[0]),
        "encode_time": int(_get(libs, ctx, OPT_ENCODE_TIME, "time_t")[0]),
        "decode_time": int(_get(libs, ctx, OPT_DECODE_TIME, "time_t")[0]),
        "ttl": int(_get(libs, ctx, OPT_TTL, "int")[0]),
        "cipher": int(_get(libs, ctx, OPT_CIPHER_TYPE, "int")[0]),
        "mac": int(_get(libs, ctx, OPT_MAC_TYPE, "int")[0]),
        "zip": int(_get(libs, ctx, OPT_ZIP_TYPE, "int")[0]),
    }
