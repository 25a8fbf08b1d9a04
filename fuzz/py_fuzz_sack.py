#!/usr/bin/env python3
"""atheris harness over the SACK kiosk's request reader: the byte stream a
client sends, delivered in fuzzer-chosen chunks to ``SackServer._read`` (the
kiosk's frame reader, over a fake non-blocking socket), as the event loop
delivers it.

Input: byte 0 = k (low 4 bits), then k chunk sizes (1..256 bytes each, one
byte apiece, 0 meaning 256), then the stream. After the stream the client
closes (recv returns b"").

Invariants:

- the kiosk never reads past what it needs: the 10-byte header first, then
  exactly the declared length, never a byte of what follows;
- a connection ends either dropped without a reply or with one reply sent
  and closed; never left half-answered;
- the outcome matches a reference decode of the complete request
  (``sack.decode_create_body`` / ``decode_verify_body``, the header checks):
  a malformed, truncated or unknown request gets no reply;
- a SACK_CREATE reply is a packstr'd credential for the peer's uid/gid, the
  requested r_uid and data, context "sack", that verifies; and it is fed
  back as a SACK_VERIFY from a peer that may verify it, which must answer
  rc 0 (and one that may not gets no reply);
- only SlurmAuthError subclasses are handled inside; anything else escapes
  to atheris as a crash.

Run through ``fuzz/run.sh py_sack`` (or ``python fuzz/py_fuzz_sack.py -max_total_time=60 DIR``).
"""
from __future__ import annotations

import struct
import sys
from typing import List, Optional

import atheris

with atheris.instrument_imports(include=["slurmauth_fast"]):
    from slurmauth_fast import sack
    from slurmauth_fast.errors import SlurmAuthError
    from slurmauth_fast.keys import Keyring
    from slurmauth_fast.sack import HEADER_LEN, MIN_LENGTH, SACK_CREATE, SACK_VERIFY, PeerCred, SackServer
    from slurmauth_fast.tokens import Verifier

#: Must match FUZZ_KEY in fuzz_common.h so the seed corpus is shared.
FUZZ_KEY = b"slurmauth-fast fuzzing key, 32+ bytes long"
RING = Keyring.from_key_bytes(FUZZ_KEY)
MAX_REQUEST = 1 << 16
SERVER = SackServer(RING, socket_path="/nonexistent/sack.socket", max_request=MAX_REQUEST,
                    cluster="fuzz", ttl=60)
PEER = PeerCred(pid=4242, uid=1000, gid=100)
ANY = 4294967295
_HDR = struct.Struct(">HII")


class FakeSock:
    """A non-blocking stream socket whose peer sends ``stream`` in ``chunks``."""

    def __init__(self, stream: bytes, chunks: List[int]) -> None:
        self.stream, self.chunks = stream, chunks
        self.pos = 0          # bytes the server has read
        self.avail = 0        # bytes delivered so far
        self.sent = bytearray()
        self.closed = False

    def deliver(self) -> bool:
        """Make the next chunk readable; False once the whole stream is."""
        if self.avail >= len(self.stream):
            return False
        size = self.chunks[0] if self.chunks else len(self.stream)
        if self.chunks:
            self.chunks.append(self.chunks.pop(0))
        self.avail = min(len(self.stream), self.avail + size)
        return True

    def recv(self, n: int) -> bytes:
        assert not self.closed and n > 0
        if self.pos == len(self.stream):
            return b""                        # the client closed
        if self.pos == self.avail:
            raise BlockingIOError
        got = self.stream[self.pos:min(self.avail, self.pos + n)]
        self.pos += len(got)
        return got

    def send(self, data: memoryview) -> int:
        assert not self.closed
        self.sent += data
        return len(data)

    def fileno(self) -> int:
        return -1 if self.closed else 1000

    def close(self) -> None:
        self.closed = True


def serve(stream: bytes, chunks: List[int], peer: PeerCred = PEER) -> Optional[bytes]:
    """Feed the stream to the kiosk's reader; the reply, or None when dropped."""
    sock = FakeSock(stream, chunks)
    conn = sack._Conn(sock, peer, deadline=float("inf"))  # type: ignore[arg-type]
    limit = HEADER_LEN
    if len(stream) >= HEADER_LEN:
        version, length, rpc = _HDR.unpack_from(stream)
        if MIN_LENGTH <= length <= MAX_REQUEST - 2 and rpc in (SACK_CREATE, SACK_VERIFY):
            limit = 2 + length
    while not sock.closed:
        more = sock.deliver()
        SERVER._read(conn)                    # what the loop does when the socket is readable
        if sock.pos > limit:
            raise AssertionError(f"the kiosk read {sock.pos} bytes, past the {limit} it needed")
        if not more and not sock.closed:
            raise AssertionError("connection left open after the client sent everything and closed")
    if conn.out is not None and len(conn.out):
        raise AssertionError("connection closed with a reply half sent")
    return bytes(sock.sent) if sock.sent else None


def expected(stream: bytes) -> Optional[str]:
    """The reference outcome: None (no reply) or the rpc answered."""
    if len(stream) < HEADER_LEN:
        return None
    version, length, rpc = _HDR.unpack_from(stream)
    if not MIN_LENGTH <= length <= MAX_REQUEST - 2 or rpc not in (SACK_CREATE, SACK_VERIFY):
        return None
    if len(stream) < 2 + length:
        return None
    body = stream[HEADER_LEN:2 + length]
    try:
        if rpc == SACK_CREATE:
            sack.decode_create_body(body)
            return "create"
        token = sack.decode_verify_body(body)
    except SlurmAuthError:
        return None
    try:
        Verifier(RING, verifier_uid=PEER.uid).verify(token)
    except SlurmAuthError:
        return None
    return "verify"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    k = data[0] & 15
    chunks = [c or 256 for c in data[1:1 + k]]
    stream = bytes(data[1 + k:])
    want = expected(stream)
    reply = serve(stream, list(chunks))
    if want is None:
        if reply is not None:
            raise AssertionError(f"a reply to a request that should be dropped: {reply[:40]!r}")
        return
    if reply is None:
        raise AssertionError(f"no reply to a valid {want} request")
    if want == "verify":
        if reply != b"\0\0\0\0":
            raise AssertionError(f"SACK_VERIFY reply {reply!r}")
        return
    # SACK_CREATE: packstr(token); the credential says what was asked
    length = _HDR.unpack_from(stream)[1]
    req = sack.decode_create_body(stream[HEADER_LEN:2 + length])
    (n,) = struct.unpack_from(">I", reply)
    if n != len(reply) - 4 or n < 2 or reply[-1] != 0:
        raise AssertionError(f"SACK_CREATE reply is not one packstr: {reply[:40]!r}")
    token = reply[4:-1]
    verifier_uid = PEER.uid if req.r_uid == ANY else req.r_uid
    cred = Verifier(RING, verifier_uid=verifier_uid, contexts=("sack",)).verify(token)
    if (cred.uid, cred.gid, cred.ruid, cred.context, cred.cluster) != (PEER.uid, PEER.gid, req.r_uid, "sack", "fuzz"):
        raise AssertionError(f"credential does not match the request: {cred!r}")
    if cred.payload != (req.data or None):
        raise AssertionError("credential payload differs from the request data")
    # fed back as a SACK_VERIFY, from the uid it names (or any uid for ANY) and from another one
    again = serve(sack.encode_verify_request(token), list(chunks), PeerCred(pid=1, uid=verifier_uid, gid=1))
    if again != b"\0\0\0\0":
        raise AssertionError(f"the kiosk refused its own credential: {again!r}")
    if req.r_uid != ANY:
        other = (verifier_uid + 1) & 0xFFFFFFFF
        if serve(sack.encode_verify_request(token), list(chunks), PeerCred(pid=1, uid=other, gid=1)) is not None:
            raise AssertionError("a credential for one uid verified for another")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
