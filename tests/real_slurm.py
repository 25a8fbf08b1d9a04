"""Real Slurm daemons and clients as test components.

The Slurm build comes from ``tools/build-slurm.sh`` (the vendored 26.05.3 source) and lives
in ``$SLURM_PREFIX`` (default ``/opt/slurmauth-fast/slurm``). :class:`SlurmCluster` writes a
private slurm.conf (loopback ports, state and logs in a temp dir, SlurmUser=root) and runs a
real ``slurmctld -D -i`` on it; :meth:`SlurmCluster.start` waits until ``scontrol ping`` reports
it UP, :meth:`SlurmCluster.stop` stops it by pid. :class:`Sackd` runs a real ``sackd`` with its
socket in a private /run directory. :class:`CaptureProxy` sits between a real client and
slurmctld and keeps every request frame (and reply) that passes, which is how the tests get the
bytes real Slurm clients send.

Tests that use these are marked ``real_slurm``. Where Slurm is not built they skip with one
reason, unless ``SLURMAUTH_REQUIRE_SLURM=1`` (set by ``.ci/run``) turns that into a failure.
A daemon's log is printed when a test that used it fails (the fixtures in
``conftest.py`` call :meth:`SlurmCluster.failure_report`), and the directory is kept then.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import pytest

from daemons import spawn, terminate, unix_socket_accepts, wait_ready

PREFIX = Path(os.environ.get("SLURM_PREFIX", "/opt/slurmauth-fast/slurm"))
NOBODY_UID = 65534
NOBODY_GID = 65534

#: The clusters running now (the conftest report hook prints their logs on a failure).
ACTIVE: List["SlurmCluster"] = []


def why_not_built() -> Optional[str]:
    """None when the Slurm build is usable, else the reason it is not."""
    for rel in ("sbin/slurmctld", "sbin/sackd", "bin/scontrol", "bin/sinfo", "bin/squeue",
                "lib/slurm/auth_slurm.so", "lib/slurm/auth_jwt.so", "lib/slurm/auth_munge.so"):
        if not (PREFIX / rel).exists():
            return (f"Slurm is not built in {PREFIX} (missing {rel}): run tools/build-slurm.sh "
                    "(or set SLURM_PREFIX)")
    return None


def require_slurm() -> None:
    """Skip (or, under SLURMAUTH_REQUIRE_SLURM=1, fail) unless Slurm is built."""
    reason = why_not_built()
    if reason is None:
        return
    if os.environ.get("SLURMAUTH_REQUIRE_SLURM") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def binary(name: str) -> str:
    for sub in ("bin", "sbin"):
        p = PREFIX / sub / name
        if p.exists():
            return str(p)
    raise FileNotFoundError(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_hostname() -> str:
    return socket.gethostname().split(".")[0]


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(path, mode)


class SlurmCluster:
    """A private slurm.conf and a real slurmctld running on it.

    ``auth`` is the AuthType ("auth/slurm" or "auth/munge"); with auth/slurm the key is
    ``key`` (written as slurm.key) or ``jwks`` (a dict, written as slurm.jwks). ``jwt_key``
    enables AuthAltTypes=auth/jwt with that HS256 key. ``munge_socket`` is the munged socket
    for auth/munge. ``auth_info``, ``debug_flags``, ``slurmctld_parameters``, ``hash_plugin``
    and ``extra`` go into slurm.conf as given."""

    def __init__(self, *, auth: str = "auth/slurm", key: Optional[bytes] = None,
                 jwks: Optional[dict] = None, jwt_key: Optional[bytes] = None,
                 munge_socket: Optional[str] = None, auth_info: Optional[str] = None,
                 debug_flags: Optional[str] = None, debug: str = "info",
                 slurmctld_parameters: Optional[str] = None, hash_plugin: Optional[str] = None,
                 extra: Sequence[str] = ()) -> None:
        require_slurm()
        self.dir = Path(tempfile.mkdtemp(prefix="slurmauth-slurm-"))
        os.chmod(self.dir, 0o755)             # clients running as nobody read slurm.conf
        self.etc = self.dir / "etc"
        self.state = self.dir / "state"
        self.etc.mkdir(mode=0o755)
        self.state.mkdir(mode=0o700)
        (self.dir / "spool").mkdir(mode=0o755)
        self.conf = self.etc / "slurm.conf"
        self.log = self.dir / "slurmctld.log"
        self.port = free_port()
        self.slurmd_port = free_port()
        self.cluster_name = "sa" + os.urandom(3).hex()
        self.auth = auth
        self.key_path = self.etc / "slurm.key"
        self.jwks_path = self.etc / "slurm.jwks"
        self.jwt_key_path = self.state / "jwt_hs256.key"
        if auth == "auth/slurm":
            if jwks is not None:
                _write_private(self.jwks_path, json.dumps(jwks).encode())
            else:
                _write_private(self.key_path, key if key is not None else os.urandom(64))
        if jwt_key is not None:
            _write_private(self.jwt_key_path, jwt_key)
        self.jwt_key = jwt_key
        lines = [
            f"ClusterName={self.cluster_name}",
            f"SlurmctldHost={short_hostname()}(127.0.0.1)",
            f"SlurmctldPort={self.port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"AuthType={auth}",
            f"CredType={'cred/slurm' if auth == 'auth/slurm' else 'cred/munge'}",
            f"StateSaveLocation={self.state}",
            f"SlurmdSpoolDir={self.dir / 'spool'}",
            f"SlurmctldPidFile={self.dir / 'slurmctld.pid'}",
            f"SlurmctldLogFile={self.log}",
            f"SlurmctldDebug={debug}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobCompType=jobcomp/none",
            "MailProg=/bin/true",
            f"NodeName=node1 NodeAddr=127.0.0.1 Port={self.slurmd_port} CPUs=1 State=UNKNOWN",
            "PartitionName=debug Nodes=node1 Default=YES MaxTime=INFINITE State=UP",
        ]
        if jwt_key is not None:
            lines += ["AuthAltTypes=auth/jwt", f"AuthAltParameters=jwt_key={self.jwt_key_path}"]
        infos = [i for i in (auth_info, f"socket={munge_socket}" if munge_socket else None) if i]
        if infos:
            lines.append("AuthInfo=" + ",".join(infos))
        if debug_flags:
            lines.append(f"DebugFlags={debug_flags}")
        if slurmctld_parameters:
            lines.append(f"SlurmctldParameters={slurmctld_parameters}")
        if hash_plugin:
            lines.append(f"HashPlugin={hash_plugin}")
        lines += list(extra)
        self.conf.write_text("\n".join(lines) + "\n")
        os.chmod(self.conf, 0o644)
        self.proc: Optional[subprocess.Popen] = None
        self.keep = False              # set when a test using this cluster failed

    # -- environment -----------------------------------------------------------------

    def env(self, **extra: str) -> Dict[str, str]:
        """The environment a client of this cluster runs in."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SLURM_", "SACKD_"))}
        env["SLURM_CONF"] = str(self.conf)
        env.update(extra)
        return env

    def client_conf(self, port: int, name: str = "client.conf") -> Path:
        """A copy of slurm.conf whose SlurmctldPort is ``port`` (clients go there)."""
        text = self.conf.read_text().replace(f"SlurmctldPort={self.port}\n",
                                             f"SlurmctldPort={port}\n")
        path = self.etc / name
        path.write_text(text)
        os.chmod(path, 0o644)
        return path

    # -- processes -------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> "SlurmCluster":
        self.proc = spawn([binary("slurmctld"), "-D", "-i", "-f", str(self.conf)],
                          self.dir / "slurmctld.out", env=self.env(), new_session=True, cwd=self.dir)
        ACTIVE.append(self)
        wait_ready(self.proc, self.ping, name="slurmctld", timeout=timeout, interval=0.2,
                   logs=self.logs, stop=self.stop,
                   not_ready=f"slurmctld not UP within {timeout}s")
        return self

    def ping(self) -> bool:
        r = self.run("scontrol", "ping", timeout=20, check=False)
        return r.returncode == 0 and " is UP" in r.stdout

    def run(self, cmd: str, *args: str, env: Optional[Mapping[str, str]] = None,
            user: Optional[Tuple[int, int]] = None, timeout: float = 60,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster (``user``: (uid, gid) to drop to)."""
        kw: dict = {}
        if user is not None:
            kw = dict(user=user[0], group=user[1], extra_groups=[])
        r = subprocess.run([binary(cmd), *args], env=dict(env) if env is not None else self.env(),
                           capture_output=True, text=True, timeout=timeout, **kw)
        if check and r.returncode != 0:
            raise AssertionError(f"{cmd} {' '.join(args)} exited {r.returncode}:\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}\n{self.logs()}")
        return r

    def reconfigure(self, timeout: float = 60.0) -> None:
        """``scontrol reconfigure`` and wait until the controller answers again."""
        self.run("scontrol", "reconfigure")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.2)
        raise RuntimeError(f"slurmctld not UP after reconfigure\n{self.logs()}")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def logs(self, tail: int = 60) -> str:
        parts = []
        names = ["slurmctld.log", "sackd.log"]
        if not self.log_text():            # it failed before opening its log file
            names.insert(0, "slurmctld.out")
        for name in names:
            try:
                lines = (self.dir / name).read_text(errors="replace").splitlines()
            except OSError:
                continue
            parts.append(f"--- {self.dir / name} (last {tail} lines)\n" + "\n".join(lines[-tail:]))
        return "\n".join(parts)

    def stop(self) -> None:
        terminate(self.proc, 30, group=True)
        self.proc = None

    def cleanup(self) -> None:
        """Stop slurmctld; remove its directory unless a test using it failed."""
        self.stop()
        if self in ACTIVE:
            ACTIVE.remove(self)
        if self.keep:
            print(f"\nkept the Slurm test directory {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Sackd:
    """A real sackd on ``cluster``'s slurm.conf, its socket in a private /run directory."""

    def __init__(self, cluster: SlurmCluster) -> None:
        self.cluster = cluster
        self.runtime_dir = Path(f"/run/slurmauth-sackd-{os.urandom(4).hex()}")
        self.socket = self.runtime_dir / "sack.socket"
        self.log = cluster.dir / "sackd.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "Sackd":
        self.proc = spawn([binary("sackd"), "-D", "-f", str(self.cluster.conf), "-v"], self.log,
                          env=self.cluster.env(RUNTIME_DIRECTORY=str(self.runtime_dir)),
                          new_session=True, cwd=self.cluster.dir)
        wait_ready(self.proc, lambda: unix_socket_accepts(self.socket), name="sackd",
                   timeout=timeout, interval=0.05, logs=self.output, stop=self.stop,
                   not_ready=f"sackd did not open {self.socket}")
        return self

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        terminate(self.proc, 20, group=True)
        self.proc = None
        shutil.rmtree(self.runtime_dir, ignore_errors=True)


# -- talking to slurmctld directly --------------------------------------------------

def recv_frame(sock: socket.socket, limit: int = 64 << 20) -> bytes:
    """One length-prefixed frame (prefix included), or b"" if the peer closed first."""
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            if head:
                raise ConnectionError("peer closed inside a length prefix")
            return b""
        head += chunk
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise ConnectionError(f"frame of {n} bytes is over the test's limit")
    parts = [head]
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed mid-frame")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def send_rpc(port: int, frame: bytes, *, host: str = "127.0.0.1", source: Optional[str] = None,
             timeout: float = 30.0) -> bytes:
    """Send one request frame on a fresh connection, as Slurm clients do; the reply frame,
    or b"" when the server closed without one."""
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(frame)
        return recv_frame(s)


def reply_rc(reply: bytes) -> int:
    """The rc of a RESPONSE_SLURM_RC reply frame."""
    from slurmauth_fast.rpc import RESPONSE_SLURM_RC, parse_frame

    f = parse_frame(reply)
    assert f.msg_type == RESPONSE_SLURM_RC, f"reply is msg_type {f.msg_type}, not RESPONSE_SLURM_RC"
    return struct.unpack(">I", bytes(f.body)[:4])[0]


def ping_success_reply(request: bytes) -> bytes:
    """What slurmctld answers a good REQUEST_PING: RESPONSE_SLURM_RC rc 0, NO_AUTH_CRED."""
    from slurmauth_fast.rpc import MSG_KEEP_BUFFER, NO_AUTH_CRED, RESPONSE_SLURM_RC, pack_frame

    version = struct.unpack(">H", request[4:6])[0]
    return pack_frame(RESPONSE_SLURM_RC, struct.pack(">I", 0), flags=NO_AUTH_CRED | MSG_KEEP_BUFFER,
                      version=version)


class CaptureProxy:
    """A one-RPC-per-connection relay in a thread: each client connection's request frame is
    recorded, sent to ``upstream`` on a new connection, and the reply relayed back. Real
    clients pointed at :attr:`port` (see :meth:`SlurmCluster.client_conf`) talk to slurmctld
    through it; :attr:`requests` holds what they sent, :attr:`replies` what came back.

    With ``upstream_port=None`` nothing is forwarded: each request is answered with
    slurmctld's reply to a successful REQUEST_PING (RESPONSE_SLURM_RC rc 0, unsigned). That
    keeps a MUNGE credential unused, so the test can decode it (munged's replay cache would
    refuse a second decode)."""

    def __init__(self, upstream_port: Optional[int], upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port) if upstream_port is not None else None
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.requests: List[bytes] = []
        self.replies: List[bytes] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                request = recv_frame(conn)
                if not request:
                    return
                with self._lock:
                    self.requests.append(request)
                if self.upstream is None:
                    reply = ping_success_reply(request)
                else:
                    reply = send_rpc(self.upstream[1], request, host=self.upstream[0])
                with self._lock:
                    self.replies.append(reply)
                conn.sendall(reply)
            except OSError:
                return

    def close(self) -> None:
        self._stop = True
        self.listener.close()
        self._thread.join(5)

    def __enter__(self) -> "CaptureProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
