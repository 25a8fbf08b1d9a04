"""Reading key files the way Slurm does, permission check included.

Slurm refuses a key file that grants "other" any access (``mode & 0007``,
fatal at start-up) and warns when the owner is neither root nor SlurmUser.
The check runs on the opened file descriptor (``fstat``), so the file that is
checked is the file that is read. The open never blocks: it is non-blocking,
and anything but a regular file (a FIFO would hold ``open()`` until a writer
came, and a SIGHUP reload with it) is refused before a byte is read. Symbolic
links are followed, as Slurm follows them (``stat()`` then ``open()``). Key bytes are returned in a ``bytearray``
so the caller can wipe them (:func:`wipe`) once the key is loaded.
"""
from __future__ import annotations

import logging
import os
import stat
from typing import Optional, Union

from .errors import KeyFileError, KeyFileTypeError, KeyPermissionError

log = logging.getLogger("slurmauth_fast.keys")

#: slurm.key, slurm.jwks, jwt_hs256.key: no access at all for "other".
NO_OTHER_ACCESS = stat.S_IRWXO
#: auth/jwt's RS256 jwks (public keys): may be world-readable, never writable.
NO_OTHER_WRITE = stat.S_IWOTH

#: Largest key file read; Slurm's keys are bytes to a few KiB, a jwks a few keys.
MAX_KEY_FILE = 1024 * 1024

PathLike = Union[str, "os.PathLike[str]"]


def check_key_permissions(path: PathLike, st: os.stat_result, *, bad_mode: int = NO_OTHER_ACCESS,
                          slurm_user_uid: Optional[int] = None) -> None:
    """Apply Slurm's rule to a stat result: raise :class:`KeyPermissionError` when
    ``st_mode & bad_mode``; log a warning when the owner is neither root nor
    SlurmUser (only when ``slurm_user_uid`` is known and not root, as Slurm does)."""
    if st.st_mode & bad_mode:
        raise KeyPermissionError(
            f"key file is insecure: '{os.fspath(path)}' mode=0{stat.S_IMODE(st.st_mode):o} "
            f"(must not grant {'any access' if bad_mode & stat.S_IROTH else 'write access'} to others)"
        )
    if slurm_user_uid and st.st_uid not in (0, slurm_user_uid):
        log.warning("'%s' owned by uid=%d, instead of SlurmUser(%d) or root",
                    os.fspath(path), st.st_uid, slurm_user_uid)


def read_key_file(path: PathLike, *, bad_mode: int = NO_OTHER_ACCESS,
                  slurm_user_uid: Optional[int] = None, max_size: int = MAX_KEY_FILE) -> bytearray:
    """Open, permission-check and read a key file. Errors name the file and the rule."""
    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise KeyFileError(f"cannot open key file '{p}': {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileTypeError(f"key file '{p}' is not a regular file ({_kind(st.st_mode)})")
        check_key_permissions(p, st, bad_mode=bad_mode, slurm_user_uid=slurm_user_uid)
        if st.st_size > max_size:
            raise KeyFileError(f"key file '{p}' is larger than {max_size} bytes")
        data = bytearray(st.st_size + 1)
        view = memoryview(data)
        n = 0
        while n < len(data):
            got = os.readv(fd, [view[n:]])
            if got == 0:
                break
            n += got
        view.release()
        if n > st.st_size:
            wipe(data)
            raise KeyFileError(f"key file '{p}' grew while it was read")
        del data[n:]
        return data
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def wipe(buf: bytearray) -> None:
    """Overwrite a bytearray holding key material with zeros."""
    buf[:] = bytes(len(buf))  # same length: overwritten in place, no reallocation
