"""A controller shim: receive Slurm RPCs, verify them, answer pings, as slurmctld 26.05 does.

This is the example to copy when you put something in place of slurmctld. It runs on the C
serving core (:mod:`slurmauth_fast.frontend`): the core reads each connection's frame, caps
its size before reading it, verifies an auth/slurm credential as soon as the header and auth
section are in (before the body is read: a forged 1 MiB frame costs a few hundred bytes),
checks the body hash, and hands the verified request up; auth/munge and auth/jwt frames are
verified by the front end's plugin dispatch. The answer is slurmctld's, byte for byte:

- REQUEST_PING (1008) gets RESPONSE_SLURM_RC (8001) with rc 0; any other verified message
  RESPONSE_SLURM_RC with SLURM_UNEXPECTED_MSG_ERROR (1000), since the shim implements nothing
  else;
- replies carry no credential: slurmctld sets NO_AUTH_CRED on every response (the client
  already trusts the connection it opened), so the reply to a ping is a 24-byte frame with
  flags NO_AUTH_CRED|MSG_KEEP_BUFFER (0x0044), the requester's protocol version and the uint32
  rc as body;
- one RPC per connection: closed after the reply, as slurmctld does;
- a credential that parses but does not verify, or none, gets rc 1007
  (SLURM_PROTOCOL_AUTHENTICATION_ERROR) and the close; a frame that does not parse is closed
  unanswered.

Run it with ``slurmauth-fast shim --unix /run/shim.sock`` or ``--listen 127.0.0.1:6817``;
SIGHUP re-reads the keys (off the loop), SIGINT/SIGTERM stop it after serving what is in flight.
"""
from __future__ import annotations

import logging
import struct
from typing import Optional

from ._bindings.serve import ServeCore
from .errors import CredentialError
from .frame import REQUEST_PING, RESPONSE_SLURM_RC, parse_frame
from .frame_verifier import FrameVerifier
from .frontend import (
    SLURM_PROTOCOL_AUTHENTICATION_ERROR,
    SLURM_SUCCESS,
    SLURM_UNEXPECTED_MSG_ERROR,
    FrontEnd,
    Request,
    rc_reply,
)

log = logging.getLogger("slurmauth_fast.shim")

#: Largest frame accepted by default. Slurm allows 1 GiB; a ping-answering shim has no use
#: for more than a few KiB, so keep the cap small.
DEFAULT_MAX_FRAME = 1024 * 1024


def answer_rc(msg_type: int) -> int:
    """The rc the shim answers a verified request of ``msg_type`` with."""
    return SLURM_SUCCESS if msg_type == REQUEST_PING else SLURM_UNEXPECTED_MSG_ERROR


class ControllerShim(FrontEnd):
    """Verifies incoming RPCs as ``verifier`` decides and answers REQUEST_PING.

    ``verifier`` is a :class:`~slurmauth_fast.frame_verifier.FrameVerifier` (e.g.
    ``FrameVerifier.from_slurm_conf(path)``); ``core`` a :class:`ServeCore` (default: one with
    ``max_frame``, the verifier's protocol versions and ``core_config``, the other
    ``sa_serve_config`` fields: caps and deadlines)."""

    def __init__(self, verifier: FrameVerifier, *, core: Optional[ServeCore] = None,
                 max_frame: int = DEFAULT_MAX_FRAME, **core_config: int) -> None:
        super().__init__(verifier, core, logger=log, max_frame=max_frame, **core_config)

    def admit(self, req: Request) -> None:
        rc = answer_rc(req.msg_type)
        log.info("msg_type %d from uid %d -> rc %d", req.msg_type, req.uid, rc)
        self.reply_rc(req.conn_id, rc, req.version)

    def answer(self, data: bytes) -> bytes:
        """The reply the shim sends for ``data`` (one whole frame), computed without a
        socket, for tests and tools. Raises for a frame that does not parse (it is closed)."""
        try:
            rpc = self.verifier.verify(data)
        except CredentialError:
            return rc_reply(SLURM_PROTOCOL_AUTHENTICATION_ERROR, parse_frame(data).version)
        return rc_reply(answer_rc(rpc.frame.msg_type), rpc.frame.version)

    @staticmethod
    def reply(msg_type: int, body: bytes, *, version: int) -> bytes:
        """RESPONSE_SLURM_RC as slurmctld sends it (``msg_type`` must be 8001, ``body`` the
        uint32 rc)."""
        if msg_type != RESPONSE_SLURM_RC or len(body) != 4:
            raise ValueError("the shim only sends RESPONSE_SLURM_RC with a uint32 rc")
        return rc_reply(struct.unpack(">I", body)[0], version)


__all__ = ["DEFAULT_MAX_FRAME", "ControllerShim", "answer_rc"]
