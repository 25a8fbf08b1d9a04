"""After reload(), a retired key's state is wiped once nothing in flight uses
it: the per-sender credential cache (tokens._Layout) must not keep the old
key state (and with it the keyed HMAC contexts in C memory) alive.

The C key context of the retired key is read through ffi at its address: after
the reload and a collection it must no longer hold the keyed state."""
import gc
import os
import weakref

from slurmauth_fast._core import ffi
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential


def _write_key(path, data):
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _key_ctx_snapshot(ring):
    """(weakref to the key state, address and bytes of its C HMAC context)."""
    state = ring._state
    ctx = state.keys[0].key.cdata
    size = ffi.sizeof(ctx[0])
    addr = int(ffi.cast("uintptr_t", ctx))
    return weakref.ref(state), addr, size, bytes(ffi.buffer(ctx, size))


def test_retired_key_state_is_released_and_wiped_after_reload(tmp_path):
    key = tmp_path / "slurm.key"
    _write_key(key, os.urandom(64))
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    v = Verifier(ring, verifier_uid=0)
    # several senders and layouts go through the cache with the old key
    for host, cluster in (("n1", "c1"), ("node-2", "c1"), ("n3", None), ("n1", "clusterA")):
        token = create_credential(ring, uid=1000, gid=100, host=host, cluster=cluster, payload=b"\x02" + b"p" * 32)
        assert v.verify(token).host == host
        assert v.verify_batch([token, token])[1].host == host
        assert v.verify_many([token]).credential(0).host == host
    ref, addr, size, before = _key_ctx_snapshot(ring)
    assert any(before)

    _write_key(key, os.urandom(64))   # rotate slurm.key, then scontrol reconfigure
    ring.reload()
    gc.collect()
    assert ref() is None, "the retired key state is still referenced: " + repr(
        [type(r).__name__ for r in gc.get_referrers(ref())][:5])
    # its C context was wiped when its owner went (and the memory may be reused since)
    assert bytes(ffi.buffer(ffi.cast("uint8_t *", addr), size)) != before

    # the cache keeps working with the new key, and still distinguishes states
    token = create_credential(ring, uid=1000, gid=100, host="n1", cluster="c1", payload=b"\x02" + b"p" * 32)
    assert v.verify(token).host == "n1" and v.verify(token).host == "n1"


def test_cached_sender_verified_again_after_reload_gets_the_new_kid(tmp_path):
    jwks = tmp_path / "slurm.jwks"

    def write(kids):
        import base64
        import json
        keys = [{"kid": k, "kty": "oct", "alg": "HS256", "k": base64.b64encode(k.encode() * 16).decode()}
                for k in kids]
        _write_key(jwks, json.dumps({"keys": keys}).encode())

    write(["a", "b"])
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    v = Verifier(ring, verifier_uid=0)
    tok_a = create_credential(ring, uid=1, gid=2, host="h")
    assert v.verify(tok_a).kid == "a" and v.verify(tok_a).kid == "a"    # second one from the cache
    ref = weakref.ref(ring._state)
    write(["a", "c"])
    ring.reload()
    gc.collect()
    assert ref() is None
    assert v.verify(tok_a).kid == "a"
