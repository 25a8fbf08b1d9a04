"""The SACK kiosk's client: ask a kiosk for a credential (:func:`sack_create`)
or to verify one (:func:`sack_verify`), over its unix socket."""
from __future__ import annotations

import os
import socket
import time
from typing import Optional, Tuple, Union

from ..credential import PROTOCOL_VERSION
from ..exceptions import (BadArgumentError, SackConnectError, SackCreateRefusedError,
                          SackProtocolError, SackTimeoutError, SackVerifyRefusedError, UnpackError)
from .wire import (DEFAULT_TIMEOUT, MAX_REPLY, BytesLike, client_socket_paths, decode_u32,
                   encode_create_request, encode_verify_request, unpack_token_reply)


# --- client -----------------------------------------------------------------

def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SackTimeoutError("SACK kiosk did not answer in time")
    return left


def _connect_one(path: str, deadline: float) -> socket.socket:
    """Connect to one kiosk socket. A full listen backlog (EAGAIN) means the
    kiosk is there but busy: retry until the deadline."""
    delay = 0.001
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)
        except BaseException:
            sock.close()
            raise


def _connect(socket_path: Optional[str], cluster: Optional[str], deadline: float) -> socket.socket:
    paths = [os.fspath(socket_path)] if socket_path else client_socket_paths(cluster)
    failures = []
    for path in paths:
        try:
            return _connect_one(path, deadline)
        except socket.timeout:
            raise SackTimeoutError(f"connecting to SACK kiosk at '{path}' timed out") from None
        except OSError as e:
            failures.append(f"'{path}': {e.strerror or e}")
    raise SackConnectError("no SACK kiosk reachable (" + "; ".join(failures) + ")")


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    """Read exactly ``n`` bytes, or fewer if the kiosk closed the connection."""
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(_remaining(deadline))
        try:
            chunk = sock.recv(min(n - len(buf), 65536))
        except socket.timeout:
            raise SackTimeoutError("SACK kiosk did not answer in time") from None
        except ConnectionResetError:
            chunk = b""  # a close with our request unread: the same refusal
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _exchange(request: bytes, reply_head: int, *, socket_path: Optional[str], cluster: Optional[str],
              timeout: float) -> Tuple[socket.socket, bytes, float]:
    """Connect, send the whole request and read the first ``reply_head`` bytes.
    Returns the socket, those bytes and the exchange's deadline."""
    if not timeout > 0:
        raise BadArgumentError("timeout must be positive")
    deadline = time.monotonic() + timeout
    sock = _connect(socket_path, cluster, deadline)
    try:
        sock.settimeout(_remaining(deadline))
        try:
            sock.sendall(request)  # loops over partial writes; one overall timeout
        except socket.timeout:
            raise SackTimeoutError("sending to the SACK kiosk timed out") from None
        except (BrokenPipeError, ConnectionResetError):
            pass  # the kiosk closed early: it refused; reading shows it
        return sock, _recv_exact(sock, reply_head, deadline), deadline
    except BaseException:
        sock.close()
        raise


def sack_create(r_uid: int, data: BytesLike = b"", *, socket_path: Optional[str] = None,
                cluster: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT,
                version: int = PROTOCOL_VERSION) -> str:
    """Ask the kiosk for a credential for this process's own uid/gid.

    ``r_uid`` is the uid allowed to verify it (:data:`SLURM_AUTH_UID_ANY` for
    anyone); ``data`` becomes the credential's payload (Slurm passes the
    message-body hash). ``socket_path`` overrides Slurm's search order
    (:func:`client_socket_paths`). Raises :class:`SackCreateRefusedError` when
    the kiosk closes without a reply, :class:`SackConnectError`,
    :class:`SackTimeoutError` or :class:`SackProtocolError` otherwise."""
    request = encode_create_request(r_uid, data, version=version)
    sock, head, deadline = _exchange(request, 4, socket_path=socket_path, cluster=cluster, timeout=timeout)
    try:
        if not head:
            raise SackCreateRefusedError("SACK kiosk closed the connection without a credential")
        if len(head) < 4:
            raise SackProtocolError("truncated reply length from the SACK kiosk")
        n = decode_u32(head)
        if n == 0:
            raise SackProtocolError("SACK kiosk replied with an empty token")
        if n > MAX_REPLY:
            raise SackProtocolError(f"SACK kiosk reply of {n} bytes exceeds {MAX_REPLY}")
        body = _recv_exact(sock, n, deadline)
    finally:
        sock.close()
    if len(body) < n:
        raise SackProtocolError("truncated token from the SACK kiosk")
    try:
        token = unpack_token_reply(head + body)
        assert token is not None
        return token.decode("ascii")
    except (UnpackError, UnicodeDecodeError) as e:
        raise SackProtocolError(f"malformed token from the SACK kiosk: {e}") from None


def sack_verify(token: Union[str, bytes], *, socket_path: Optional[str] = None,
                cluster: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT,
                version: int = PROTOCOL_VERSION) -> None:
    """Ask the kiosk to verify ``token`` with this process's uid as the
    verifier uid. Returns None when it answers 0; raises
    :class:`SackVerifyRefusedError` (a :class:`CredentialError`) when it
    closes without a reply, as Slurm's kiosk does for any bad token."""
    request = encode_verify_request(token, version=version)
    sock, head, _ = _exchange(request, 4, socket_path=socket_path, cluster=cluster, timeout=timeout)
    sock.close()
    if not head:
        raise SackVerifyRefusedError("SACK kiosk closed the connection: the credential did not verify")
    if len(head) < 4:
        raise SackProtocolError("truncated reply from the SACK kiosk")
    rc = decode_u32(head)
    if rc != 0:
        raise SackVerifyRefusedError(f"SACK kiosk answered rc={rc}")


__all__ = ["sack_create", "sack_verify"]
