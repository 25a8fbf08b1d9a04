"""Key rotation under load: threads verify continuously while another thread
rewrites slurm.jwks and calls reload(). No valid token may be refused during
a rotation, and a token of a removed key is refused by every verification
that starts after the reload removing it has returned."""
import json
import os
import threading
import time

from slurmauth_fast import errors as E
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

K1, K2 = b"\x11" * 32, b"\x22" * 32


def _write(path, entries):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"keys": entries}, f)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _jwk(kid, secret, default=False):
    import base64
    d = {"kid": kid, "kty": "oct", "alg": "HS256", "k": base64.b64encode(secret).decode()}
    if default:
        d["use"] = "default"
    return d


PHASES = [  # (entries, k1 valid, k2 valid)
    ([("k1", K1, True)], True, False),
    ([("k1", K1, False), ("k2", K2, True)], True, True),
    ([("k2", K2, True)], False, True),
]


def test_rotation_with_concurrent_verifiers(tmp_path):
    path = tmp_path / "slurm.jwks"
    _write(path, [_jwk(*e) for e in PHASES[0][0]])
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    tok1 = create_credential(ring, uid=1, gid=1, host="h", ttl=3600)
    ring2 = Keyring.from_jwks(json.dumps({"keys": [_jwk("k2", K2)]}))
    tok2 = create_credential(ring2, uid=2, gid=2, host="h", ttl=3600)
    verifier = Verifier(ring, verifier_uid=0)

    # The keyring goes through SEQ[0], SEQ[1], ...; `started` is the index of
    # the newest reload that has begun, `done` of the newest that has returned.
    seq = [0] + [1, 2, 0] * 15
    pos = {"started": 0, "done": 0}
    stop = threading.Event()
    failures = []
    counts = {"checked": 0}
    lock = threading.Lock()

    def worker(tok, kid_index):
        n = 0
        while not stop.is_set():
            lo = pos["done"]
            try:
                verifier.verify(tok)
                ok, err = True, None
            except E.CredentialError as e:
                ok, err = False, e
            hi = pos["started"]
            valid = [PHASES[seq[i]][kid_index] for i in range(lo, hi + 1)]
            if all(valid) and not ok:
                failures.append(f"valid token of key {kid_index} refused in steps {lo}..{hi}: {err!r}")
            if not any(valid):
                if ok:
                    failures.append(f"token of removed key {kid_index} accepted in steps {lo}..{hi}")
                elif not isinstance(err, E.KeyIdError):
                    failures.append(f"wrong error {err!r}")
            n += 1
        with lock:
            counts["checked"] += n

    threads = [threading.Thread(target=worker, args=(t, i)) for t, i in
               ((tok1, 1), (tok2, 2), (tok1, 1), (tok2, 2))]
    for t in threads:
        t.start()
    try:
        for step in range(1, len(seq)):
            time.sleep(0.004)
            _write(path, [_jwk(*e) for e in PHASES[seq[step]][0]])
            pos["started"] = step
            ring.reload()
            pos["done"] = step
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures, failures[:5]
    assert counts["checked"] > 100


def test_a_reload_that_renames_a_key_is_seen_by_the_next_credential(tmp_path):
    """The verifier reuses the fields of the last credential of the same shape
    (see sender_cache.ResultLayout); after a reload the same key index may carry another
    kid, and the credential must name the new one."""
    path = tmp_path / "slurm.jwks"
    _write(path, [_jwk("k1", K1, True)])
    ring = Keyring.load(conf_dir=str(tmp_path), env={})
    v = Verifier(ring, verifier_uid=0)
    tok = create_credential(ring, uid=5, gid=5, host="h", ttl=3600)
    assert v.verify(tok).kid == "k1" and v.verify(tok).kid == "k1"
    _write(path, [_jwk("k1-renamed", K1, True)])
    ring.reload()
    tok2 = create_credential(ring, uid=5, gid=5, host="h", ttl=3600)
    assert v.verify(tok2).kid == "k1-renamed"
    assert v.verify_batch([tok2, tok2])[1].kid == "k1-renamed"
