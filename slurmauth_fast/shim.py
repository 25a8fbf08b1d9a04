"""A small controller shim: receive Slurm RPCs, verify them, answer pings.

This is the example to copy when you put something in front of (or in place
of) slurmctld. It does what slurmctld does with every incoming message:

1. read ``uint32 total_len`` and refuse anything over the frame cap before
   reading the rest (a client cannot make us buffer 4 GiB);
2. parse the frame and 3. verify the auth/slurm credential and its body
   hash, both in :func:`~slurmauth_fast.rpc.verify_rpc` on the raw bytes (one
   C call: frame, HS256 signature, expiry, ruid, context "auth"/"sack", then
   the payload must hash this body and msg_type);
4. answer, as slurmctld 26.05 answers: REQUEST_PING (1008) gets
   RESPONSE_SLURM_RC (8001) with rc 0; any other verified message gets
   RESPONSE_SLURM_RC with SLURM_UNEXPECTED_MSG_ERROR, since this shim
   implements nothing else.

Replies carry no credential: slurmctld sets NO_AUTH_CRED on every response
(the client already trusts the connection it opened), so the reply to a ping
is a 24-byte frame with flags NO_AUTH_CRED|MSG_KEEP_BUFFER (0x0044), the
requester's protocol version and the uint32 rc as body. One RPC per
connection: after the reply the connection is closed, as slurmctld does (a
second frame on it would get no answer there either). A credential that
parses but does not verify is answered with rc 1007
(SLURM_PROTOCOL_AUTHENTICATION_ERROR) before the close; a frame that does
not parse is logged (class and reason, never the token) and the connection
is closed without a reply.

Run it with ``slurmauth-fast shim --unix /run/shim.sock`` or
``--listen 127.0.0.1:6817``; SIGHUP re-reads the keys, SIGINT/SIGTERM stop it
cleanly.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any, List, Optional, Tuple

from .errors import CredentialError, FrameTooLargeError, SlurmAuthError
from .keys import Keyring
from .frame import (
    DEFAULT_VERSIONS,
    MSG_KEEP_BUFFER,
    NO_AUTH_CRED,
    REQUEST_PING,
    RESPONSE_SLURM_RC,
    pack_frame,
    parse_frame,
)
from .frame_verifier import verify_rpc
from .verifier import Verifier

log = logging.getLogger("slurmauth_fast.shim")

#: Largest frame accepted by default. Slurm allows 1 GiB; a ping-answering
#: shim has no use for more than a few KiB, so keep the cap small.
DEFAULT_MAX_FRAME = 1024 * 1024
#: Seconds a client may take to send one whole frame.
DEFAULT_TIMEOUT = 10.0

SLURM_SUCCESS = 0
SLURM_UNEXPECTED_MSG_ERROR = 1000
SLURM_PROTOCOL_AUTHENTICATION_ERROR = 1007
#: The flags slurmctld puts on every reply (slurm_resp_msg_init()).
REPLY_FLAGS = NO_AUTH_CRED | MSG_KEEP_BUFFER


class ControllerShim:
    """Verifies incoming RPCs with ``keyring`` and answers REQUEST_PING.

    ``verifier_uid`` is the uid a credential's ruid must match (default: this
    process's uid, like slurmctld running as SlurmUser). ``block_null_hash``
    and ``block_zero_hash`` are Slurm's CommunicationParameters of the same
    names."""

    def __init__(self, keyring: Keyring, *, verifier_uid: Optional[int] = None,
                 max_frame: int = DEFAULT_MAX_FRAME, timeout: float = DEFAULT_TIMEOUT,
                 block_null_hash: bool = False, block_zero_hash: bool = False,
                 versions: Tuple[int, int] = DEFAULT_VERSIONS) -> None:
        self.keyring = keyring
        self.verifier = Verifier(keyring, verifier_uid=verifier_uid)
        self.max_frame = max_frame
        self.timeout = timeout
        self.block_null_hash = block_null_hash
        self.block_zero_hash = block_zero_hash
        self.versions = versions
        self._servers: List[asyncio.AbstractServer] = []

    # -- one connection ------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: one frame, one reply, then close (as slurmctld)."""
        peer = _peer_name(writer)
        try:
            frame = await self._read_frame(reader)
            if frame is None:
                return
            # Verifying is microseconds of C work (the GIL is released), so it
            # runs inline; a shim taking large bodies could use an executor.
            writer.write(self.answer(frame, peer))
            await writer.drain()
        except SlurmAuthError as e:
            log.warning("%s: rejected: %s: %s", peer, type(e).__name__, e)
        except asyncio.TimeoutError:
            log.warning("%s: timed out after %.1fs reading a frame", peer, self.timeout)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            log.warning("%s: connection closed mid-frame (%s)", peer, type(e).__name__)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass

    async def _read_frame(self, reader: asyncio.StreamReader) -> Optional[bytes]:
        """One whole frame (length prefix included), or None at a clean EOF.

        The client has ``timeout`` seconds for the frame (the wait for its
        first byte included). One timer per frame cancels this task when it
        expires, which becomes asyncio.TimeoutError here: asyncio.wait_for
        would start a new task for each of the two reads, and that cost a
        third of the shim's throughput."""
        task = asyncio.current_task()
        assert task is not None
        expired = []

        def expire() -> None:
            expired.append(True)
            task.cancel()

        timer = asyncio.get_running_loop().call_later(self.timeout, expire)
        try:
            try:
                prefix = await reader.readexactly(4)
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    raise
                return None                      # the client closed between frames
            (total_len,) = struct.unpack(">I", prefix)
            if total_len > self.max_frame:          # refuse before reading (or buffering) it
                raise FrameTooLargeError(f"frame of {total_len} bytes is over the "
                                         f"{self.max_frame}-byte cap")
            rest = await reader.readexactly(total_len)
        except asyncio.CancelledError:
            if not expired:
                raise                            # a real cancellation (the server closing)
            if hasattr(task, "uncancel"):        # Python 3.11+: this cancel is consumed
                task.uncancel()
            raise asyncio.TimeoutError() from None
        finally:
            timer.cancel()
        return prefix + rest

    def answer(self, data: bytes, peer: str = "-") -> bytes:
        """Verify one frame and build the reply frame.

        A credential that fails gets rc 1007, as from slurmctld; a frame that
        does not parse raises (the caller closes the connection unanswered)."""
        try:
            rpc = verify_rpc(data, self.verifier, block_null_hash=self.block_null_hash,
                             block_zero_hash=self.block_zero_hash, versions=self.versions,
                             max_frame=self.max_frame)
        except CredentialError as e:
            # parse_frame raises for a frame that does not parse: no reply then
            frame = parse_frame(data, versions=self.versions, max_frame=self.max_frame)
            log.warning("%s: msg_type %d refused: %s: %s", peer, frame.msg_type,
                        type(e).__name__, e)
            return self.reply(RESPONSE_SLURM_RC, struct.pack(">I", SLURM_PROTOCOL_AUTHENTICATION_ERROR),
                              version=frame.version)
        frame, cred = rpc.frame, rpc.credential
        rc = SLURM_SUCCESS if frame.msg_type == REQUEST_PING else SLURM_UNEXPECTED_MSG_ERROR
        log.info("%s: msg_type %d from uid %d (%s) -> rc %d",
                 peer, frame.msg_type, rpc.uid, getattr(cred, "host", "-"), rc)
        return self.reply(RESPONSE_SLURM_RC, struct.pack(">I", rc), version=frame.version)

    @staticmethod
    def reply(msg_type: int, body: bytes, *, version: int) -> bytes:
        """A reply frame as slurmctld sends it: no auth section, flags 0x0044."""
        return pack_frame(msg_type, body, flags=REPLY_FLAGS, version=version)

    def reload_keys(self) -> None:
        """Re-read slurm.key/slurm.jwks, as ``scontrol reconfigure`` makes
        slurmctld do (the CLI calls this on SIGHUP). A bad file keeps the old
        keys in force."""
        try:
            self.keyring.reload()
        except SlurmAuthError as e:
            log.error("key reload failed, keeping the current keys: %s", e)
        else:
            log.warning("keys reloaded from %s", self.keyring.source)

    # -- servers ---------------------------------------------------------------

    async def start_unix(self, path: str) -> asyncio.AbstractServer:
        server = await asyncio.start_unix_server(self.handle, path=path)
        self._servers.append(server)
        return server

    async def start_tcp(self, host: str, port: int) -> asyncio.Server:
        server = await asyncio.start_server(self.handle, host=host, port=port)
        self._servers.append(server)
        return server

    async def close(self) -> None:
        """Stop listening and wait for the servers to close."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer: Any = writer.get_extra_info("peername")
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return f"unix:{writer.get_extra_info('sockname') or '?'}"


__all__ = ["DEFAULT_MAX_FRAME", "ControllerShim"]
