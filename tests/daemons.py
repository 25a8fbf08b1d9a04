"""Starting and stopping the real daemons the tests run (slurmctld, sackd, munged): each
writes its output to a file, is ready when a probe says so, and is stopped with SIGTERM, then
SIGKILL after a grace period."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from typing import Callable, Mapping, Optional, Sequence


def spawn(argv: Sequence[str], output: "os.PathLike[str] | str", *,
          env: Optional[Mapping[str, str]] = None, new_session: bool = False,
          cwd: "os.PathLike[str] | str | None" = None) -> subprocess.Popen:
    """Start ``argv`` with stdout and stderr appended to ``output``, in ``cwd`` (where a
    core dump lands: give the daemon's own temporary directory, never the checkout)."""
    out = open(output, "ab")
    try:
        return subprocess.Popen(list(argv), env=dict(env) if env is not None else None,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=new_session, cwd=cwd)
    finally:
        out.close()


def wait_ready(proc: subprocess.Popen, ready: Callable[[], bool], *, name: str, timeout: float,
               interval: float, logs: Callable[[], str], stop: Callable[[], None],
               not_ready: str) -> None:
    """Poll ``ready`` every ``interval`` s until it holds; a daemon that exits first, or is not
    ready within ``timeout`` s (then ``stop`` is called), is a RuntimeError with its logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}\n{logs()}")
        if ready():
            return
        time.sleep(interval)
    stop()
    raise RuntimeError(f"{not_ready}\n{logs()}")


def terminate(proc: Optional[subprocess.Popen], grace: float, *, group: bool = False) -> None:
    """SIGTERM ``proc`` and wait up to ``grace`` s, then SIGKILL it (its process group when
    ``group``: it was spawned with ``new_session``)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()


def unix_socket_accepts(path: "os.PathLike[str] | str") -> bool:
    """Whether something accepts connections on the unix socket at ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(os.fspath(path))
            return True
        except OSError:
            return False
