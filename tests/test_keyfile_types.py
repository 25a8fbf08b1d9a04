"""A key path that names no regular file (a FIFO above all) is refused at once.

A blocking open() of a FIFO waits for a writer: a SIGHUP reload then froze the
shim and the kiosk. Every loader goes through keyfile.read_key_file, which
opens non-blocking and refuses anything but a regular file before reading.
Each load runs in a thread with a timeout, so a regression fails instead of
hanging the suite. Symbolic links are still followed, as Slurm follows them.
"""
import os
import socket
import threading

import pytest

from slurmauth_fast import jwt as slurm_jwt
from slurmauth_fast.errors import KeyFileError, KeyFileTypeError
from slurmauth_fast.keyfile import read_key_file
from slurmauth_fast.keys import Keyring

TIMEOUT = 5.0


def _promptly(fn, fifo=None):
    """fn()'s exception (or None), failing if it does not return within TIMEOUT."""
    box = {}

    def run():
        try:
            fn()
            box["exc"] = None
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["exc"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(TIMEOUT)
    if t.is_alive():
        if fifo is not None:           # let the stuck open() return so the thread ends
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f"loading did not return within {TIMEOUT} s (blocked on a non-regular file)")
    return box["exc"]


def _fifo(path):
    os.mkfifo(path, 0o600)
    return str(path)


def test_fifo_as_slurm_key_raises_promptly(tmp_path):
    path = _fifo(tmp_path / "slurm.key")
    exc = _promptly(lambda: Keyring.load(conf_dir=str(tmp_path), env={}), fifo=path)
    assert isinstance(exc, KeyFileTypeError) and isinstance(exc, KeyFileError)
    assert path in str(exc) and "FIFO" in str(exc)


def test_fifo_as_slurm_jwks_raises_promptly(tmp_path):
    path = _fifo(tmp_path / "slurm.jwks")
    exc = _promptly(lambda: Keyring.load(conf_dir=str(tmp_path), env={}), fifo=path)
    assert isinstance(exc, KeyFileTypeError) and path in str(exc)


def test_reload_onto_a_fifo_keeps_the_old_keys(tmp_path):
    key = tmp_path / "slurm.key"
    key.write_bytes(b"r" * 32)
    key.chmod(0o600)
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    before = ring.default_key()
    key.unlink()
    path = _fifo(key)
    exc = _promptly(ring.reload, fifo=path)
    assert isinstance(exc, KeyFileTypeError)
    assert ring.default_key() is before


def test_fifo_as_auth_jwt_keys_raises_promptly(tmp_path):
    hs = _fifo(tmp_path / "jwt_hs256.key")
    exc = _promptly(lambda: slurm_jwt.load_hs256_key(hs), fifo=hs)
    assert isinstance(exc, KeyFileTypeError) and hs in str(exc)
    jwks = _fifo(tmp_path / "jwks.json")
    exc = _promptly(lambda: slurm_jwt.RS256KeySet.load(jwks), fifo=jwks)
    assert isinstance(exc, KeyFileTypeError) and jwks in str(exc)


def test_other_non_regular_files_are_refused(tmp_path):
    d = tmp_path / "dir.key"
    d.mkdir(mode=0o700)
    with pytest.raises(KeyFileTypeError, match="directory"):
        read_key_file(d)
    with pytest.raises(KeyFileTypeError, match="character device"):
        read_key_file("/dev/null")
    sock_path = str(tmp_path / "s.key")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(sock_path)
        os.chmod(sock_path, 0o600)
        exc = _promptly(lambda: read_key_file(sock_path))
        assert isinstance(exc, KeyFileError)   # a socket cannot even be opened
    finally:
        s.close()


def test_symlink_to_a_regular_key_is_followed(tmp_path):
    real = tmp_path / "real.key"
    real.write_bytes(b"s" * 32)
    real.chmod(0o600)
    (tmp_path / "slurm.key").symlink_to(real)
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    assert ring.source == str(tmp_path / "slurm.key")
    # a symlink to a FIFO is refused like the FIFO
    fifo = _fifo(tmp_path / "fifo")
    (tmp_path / "slurm.key").unlink()
    (tmp_path / "slurm.key").symlink_to(fifo)
    exc = _promptly(lambda: Keyring.load(conf_dir=str(tmp_path), env={}), fifo=fifo)
    assert isinstance(exc, KeyFileTypeError)
