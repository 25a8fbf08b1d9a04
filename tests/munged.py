"""A real, private munged for tests and benchmarks.

:class:`MungedDaemon` creates a private directory holding a fresh random key
(mode 0600), then runs ``munged --foreground`` on a socket inside it and waits
until the socket accepts connections. munged (0.5.15) is picky about
permissions and says why it refuses to start; the layout here satisfies it:

- the key file must be owned by munged's user and not readable by others;
- the socket's directory must be searchable ("execute") by everyone, so it is
  0755 (which also lets a test child running as ``nobody`` reach the socket);
- the directories above must not be writable by others unless sticky (/tmp).

munged needs no ``--force`` as root. On stop it gets SIGTERM and removes its
socket. :func:`run_as` runs a function in a forked child that has dropped to
another uid/gid (root only), for testing decode restrictions.
"""
from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback
from typing import Any, Callable, List, Optional

import pytest

from daemons import spawn, terminate, unix_socket_accepts, wait_ready

MUNGED = shutil.which("munged") or next(
    (p for p in ("/usr/sbin/munged", "/sbin/munged") if os.access(p, os.X_OK)), None)
MUNGE_CLI = shutil.which("munge")
UNMUNGE_CLI = shutil.which("unmunge")

#: munged 0.5.15's compiled-in default time-to-live and maximum, for assertions.
MUNGED_DEFAULT_TTL = 300
MUNGED_MAX_TTL = 3600


def skip_unless_libmunge() -> None:
    """Skip the calling test/fixture unless libmunge is installed."""
    from slurmauth_fast import munge

    if not munge.available():
        pytest.skip("libmunge.so.2 is not installed (Debian package 'libmunge2'; .ci/run installs it)")


def skip_unless_munge() -> None:
    """Skip the calling test/fixture unless munged and libmunge are installed."""
    if MUNGED is None:
        pytest.skip("munged is not installed (Debian package 'munge'; .ci/run installs it)")
    skip_unless_libmunge()


class MungedDaemon:
    """One munged process with its own key and socket in a private directory."""

    def __init__(self, key: Optional[bytes] = None, *, num_threads: int = 2) -> None:
        if MUNGED is None:
            raise RuntimeError("munged is not installed")
        self.dir = tempfile.mkdtemp(prefix="slurmauth-munged-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "munge.socket")
        self.key_file = os.path.join(self.dir, "munge.key")
        self.log_file = os.path.join(self.dir, "munged.log")
        self.output_file = os.path.join(self.dir, "munged.out")
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, key if key is not None else os.urandom(128))  # mungekey's default: 1024 bits
        finally:
            os.close(fd)
        self.num_threads = num_threads
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 15.0) -> "MungedDaemon":
        self.proc = spawn([MUNGED, "--foreground",
                           f"--socket={self.socket}",
                           f"--key-file={self.key_file}",
                           f"--pid-file={os.path.join(self.dir, 'munged.pid')}",
                           f"--log-file={self.log_file}",
                           f"--seed-file={os.path.join(self.dir, 'munged.seed')}",
                           f"--num-threads={self.num_threads}"], self.output_file, cwd=self.dir)
        wait_ready(self.proc, lambda: unix_socket_accepts(self.socket), name="munged",
                   timeout=timeout, interval=0.02, logs=self.output, stop=self.stop,
                   not_ready=f"munged did not open {self.socket} within {timeout}s")
        return self

    def output(self) -> str:
        """What munged printed (its log, in the foreground)."""
        try:
            with open(self.output_file, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM munged and wait for it; it removes its socket on the way out."""
        terminate(self.proc, 10)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "MungedDaemon":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


def run_as(uid: int, gid: int, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``fn()`` in a forked child that has become ``uid``/``gid`` (no
    supplementary groups) and return its result, or re-raise its exception.
    Needs root."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 0
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                result = (True, fn())
            except BaseException as e:  # noqa: BLE001 - shipped to the parent
                result = (False, e)
            try:
                data = pickle.dumps(result)
            except Exception:
                data = pickle.dumps((False, RuntimeError(traceback.format_exc())))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    deadline = time.monotonic() + timeout
    while True:
        done, wstatus = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise RuntimeError("child did not finish")
        time.sleep(0.01)
    if not data:
        raise RuntimeError(f"child failed before reporting (wait status {wstatus})")
    ok, value = pickle.loads(data)
    if ok:
        return value
    raise value


def connect_as(uid: int, path: str, n: int, data: bytes = b"", timeout: float = 60.0) -> List[socket.socket]:
    """Open ``n`` unix connections to ``path`` as ``uid`` (gid ``uid``; sending
    ``data`` on each) in a child made by :func:`run_as`, and return them, held by
    this process (passed back with SCM_RIGHTS: SO_PEERCRED still names ``uid``)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

    def child() -> int:
        mine.close()
        socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            if data:
                s.sendall(data)
            socks.append(s)
        for i in range(0, n, 200):  # the in-flight fds keep the connections open
            socket.send_fds(theirs, [b"x" * len(socks[i:i + 200])], [s.fileno() for s in socks[i:i + 200]])
        return n

    try:
        assert run_as(uid, uid, child, timeout=timeout) == n
        theirs.close()
        fds = []
        mine.settimeout(timeout)
        while len(fds) < n:
            _, got, _, _ = socket.recv_fds(mine, 256, 256)
            assert got
            fds += got
        return [socket.socket(fileno=fd) for fd in fds]
    finally:
        mine.close()
        theirs.close()


@pytest.fixture(scope="module")
def munged():
    """A running private munged for the test module (skips when MUNGE is absent)."""
    skip_unless_munge()
    with MungedDaemon() as daemon:
        yield daemon
