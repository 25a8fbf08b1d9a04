"""verify_batch's packed C entry (sc_verify_batch_packed) and its inline
result reader: the same answers as verify() token by token, whatever the mix
of layouts, identity objects and failures; lengths past the buffer refused."""
import os

from slurmauth_fast import errors as E
from slurmauth_fast._core import ffi, lib
from slurmauth_fast.identity import Identity
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

NOW = 1_700_000_000


def test_mixed_layouts_and_objects_match_single_calls():
    ring = Keyring.from_key_bytes(os.urandom(32))
    v = Verifier(ring, verifier_uid=0)
    ident = Identity("u", "g", "/home/u", "/bin/sh", gids=(5, 6))
    same = create_credential(ring, uid=1, gid=1, host="n1", cluster="c", payload=b"\x02" * 33, now=NOW)
    toks = [same, same,
            create_credential(ring, uid=2, gid=2, host="a-longer-host", now=NOW),      # other layout
            same,
            create_credential(ring, uid=3, gid=3, host="n1", identity=ident, now=NOW),  # "id" object
            same,
            create_credential(ring, uid=4, gid=4, host="n1", now=NOW - 120),           # expired
            same[:-3] + "AAA", "\u00e9", same]
    results = v.verify_batch(toks, now=NOW)
    assert len(results) == len(toks)
    for tok, res in zip(toks, results):
        try:
            single = v.verify(tok, now=NOW)
        except E.CredentialError as e:
            assert type(res) is type(e) and str(res) == str(e)
        else:
            assert res == single and res.identity == single.identity
    assert results[4].identity == ident and [r.uid for r in results[:2]] == [1, 1]


def test_packed_lengths_past_the_buffer_are_refused():
    ring = Keyring.from_key_bytes(os.urandom(32))
    v = Verifier(ring, verifier_uid=0)
    tok = create_credential(ring, uid=1, gid=1, host="n1").encode()
    lens = ffi.new("size_t[]", [len(tok), 1])
    scratch = ffi.new("uint8_t[]", 65536)
    offs, status = ffi.new("size_t[]", 2), ffi.new("int[]", 2)
    ks = ring._state.ks
    assert lib.sc_verify_batch_packed(ks, v._policy, tok, len(tok), lens, 2, -1, scratch, 65536,
                                      offs, status) == lib.SA_E_ARG
    assert lib.sc_verify_batch_packed(ks, v._policy, tok + b"x", len(tok) + 1, lens, 2, -1,
                                      scratch, 65536, offs, status) == lib.SA_OK
    assert status[0] == 0 and status[1] != 0
