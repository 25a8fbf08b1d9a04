"""SACK, Slurm's auth and cred kiosk: the wire format (:mod:`.wire`), the
client (:mod:`.client`) and the server, a ``sackd`` (:mod:`.server`).

A kiosk listens on a unix stream socket. A local process that has no key
asks it for a credential (``SACK_CREATE``) or asks it to check one
(``SACK_VERIFY``). The kiosk never trusts the request about who is asking: it
reads the peer's uid/gid/pid from the kernel (``SO_PEERCRED``), so a process
only ever gets a credential for its own uid and gid, and verification uses the
asking process's uid as the verifier uid (the credential's ``ruid`` must be
that uid or "anyone").

The wire format (all integers big-endian, one request per connection)::

    uint16 version | uint32 length | uint32 rpc | body
    length counts from the length field itself to the end (only the version
    is outside it)

    SACK_CREATE (64001) body:  uint32 r_uid, packmem data
                        reply: packstr token (uint32 length incl. NUL, token, NUL)
    SACK_VERIFY (64002) body:  packstr token
                        reply: uint32 0

On any failure Slurm's kiosk closes the connection without a reply, and so
does this one. Slurm logs the request's version but does not check it; this
kiosk does the same. It is stricter than Slurm in two places that no real
client reaches: a body must unpack to exactly its declared length (Slurm
ignores trailing bytes) and a token must not contain a NUL.

Concurrency: one thread runs a ``selectors`` (epoll) loop with non-blocking
sockets. No connection can hold it up: a connection has a short deadline to
send its whole request (``read_timeout``, 2 s) and one for the whole exchange
(``request_timeout``: read, answer, write), the declared length is checked
against the request size cap before any body byte is read, reads never go
past the declared length, replies the peer does not drain are written as the
socket becomes writable, and the number of open connections is capped (new
ones wait in the listen backlog). Since the socket is open to every local
user, each peer uid may hold at most ``max_connections_per_uid`` of them (64,
at most half the table): one more is closed at accept and counted, so one uid
can never fill the table and delay the others. Log lines a peer can provoke
(unexpected rpc, over the uid cap, refusals) are rate-limited per class. Signing and verifying run inline on the
loop: tens of microseconds, with the keyring never shared with another
thread, so a reload (SIGHUP) cannot race a signature. With use_client_ids the
passwd/group lookup of the caller (NSS: possibly LDAP or sssd) runs on a small
worker pool instead, so a slow directory service delays only the callers
being looked up; the loop signs once the lookup is done.
"""
from __future__ import annotations

from ..keys import SLURM_AUTH_UID_ANY
from . import client, server, wire
from .client import sack_create, sack_verify
from .server import PeerCred, SackServer, peer_credentials
from .wire import (
    DEFAULT_LOG_INTERVAL, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_UID,
    DEFAULT_MAX_REQUEST, DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT, HEADER_LEN, MAX_REPLY,
    MIN_LENGTH, PACK_MAX_LEN, SACK_CREATE, SACK_VERIFY, SACKD_SOCKET, SERVER_ROLES,
    SLURMCTLD_SOCKET, SLURMDBD_SOCKET, SOCKET_NAME, CreateRequest, client_socket_paths,
    decode_create_body, decode_verify_body, encode_create_request, encode_request,
    encode_verify_request, server_socket_path,
)

__all__ = [
    "DEFAULT_LOG_INTERVAL", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_MAX_CONNECTIONS_PER_UID",
    "DEFAULT_MAX_REQUEST", "DEFAULT_READ_TIMEOUT", "DEFAULT_TIMEOUT", "HEADER_LEN", "MAX_REPLY",
    "MIN_LENGTH", "PACK_MAX_LEN", "SACKD_SOCKET", "SACK_CREATE", "SACK_VERIFY", "SERVER_ROLES",
    "SLURMCTLD_SOCKET", "SLURMDBD_SOCKET", "SLURM_AUTH_UID_ANY", "SOCKET_NAME", "CreateRequest",
    "PeerCred", "SackServer", "client", "client_socket_paths", "decode_create_body",
    "decode_verify_body", "encode_create_request", "encode_request", "encode_verify_request",
    "peer_credentials", "sack_create", "sack_verify", "server", "server_socket_path", "wire",
]
