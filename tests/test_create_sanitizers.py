"""csrc/create.c's fixed-claims path under AddressSanitizer and UBSan: random
constant claims (escapes, invalid UTF-8, NULs, ranges, long strings) through
sa_create_fixed_init into a struct of exactly its size, and each credential
through sa_create_fixed_at into an output buffer of exactly the length it
asks for (so any write past it is caught), compared with
sa_create_credential's bytes in the same process and with the extension's;
and three of each in one sa_create_fixed_many call, in exactly their room
and one byte short of it."""
import os
import random
import struct
import subprocess

import pytest

from slurmauth_fast._bindings import create as native
from slurmauth_fast.keys import Keyring

import sanitized

KEY = b"sanitizer-key-0123456789abcdef!!"
NOW = 1_700_000_000

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "create.h"
#include "hmac.h"
#include "sa_status.h"
#include "slurmcred.h"

static int rd(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }

/* a string of the record, or NULL for the length 0xFFFFFFFF; malloc'd to
 * its exact length (at least one byte) so a read past it is caught */
static char *str(uint32_t n, size_t *len)
{
    char *s;
    if (n == 0xFFFFFFFFu) {
        *len = 0;
        return NULL;
    }
    s = malloc(n ? n : 1);
    if (n && !rd(s, n))
        exit(2);
    *len = n;
    return s;
}

int main(void)
{
    static const char hdr[] = "%(hdr)s";
    uint8_t key[32];
    sa_hmac_key hk;
    sc_key k;
    sc_keyset ks;
    int64_t ints[6];
    uint32_t lens[4];

    memcpy(key, "%(key)s", 32);
    sa_hmac_key_init(&hk, key, 32);
    k.kid = NULL; k.kid_len = 0; k.key = &hk; k.exp = 0;
    k.hdr = hdr; k.hdr_len = strlen(hdr);
    ks.keys = &k; ks.nkeys = 1; ks.default_index = 0; ks.by_kid = 0;
    while (rd(ints, sizeof ints) && rd(lens, sizeof lens)) {
        size_t cl, cll, hl, pl;
        char *ctx = str(lens[0], &cl), *clu = str(lens[1], &cll), *host = str(lens[2], &hl);
        char *pay = str(lens[3], &pl);
        sa_create_fixed *t = malloc(sizeof *t);
        int rc = sa_create_fixed_init(t, ints[0], ints[1], ints[2], ctx, cl, clu, cll, host, hl);
        if (rc) {
            printf("init %%d\n", rc);
        } else {
            int64_t need = sa_create_fixed_at(&ks, t, ints[5], ints[3], ints[4], pay, pl, NULL, 0);
            if (need <= 0) {
                printf("call %%lld\n", (long long)need);
            } else {
                char *a = malloc((size_t)need), *b = malloc((size_t)need);
                int64_t n = sa_create_fixed_at(&ks, t, ints[5], ints[3], ints[4], pay, pl, a,
                                               (size_t)need);
                int64_t m = sa_create_credential(&ks, ints[5], 0, ints[0], ints[1], ints[2],
                                                 ints[3], ints[4], ctx, cl, clu, cll, host, hl,
                                                 pay, pl, NULL, 0, b, (size_t)need);
                if (n != need || m != need || memcmp(a, b, (size_t)need))
                    return 3;
                {   /* three of them in one batch (a pair of tags, then one alone), in
                     * exactly their room, then one byte short of it */
                    sa_create_fixed_item it[3];
                    size_t ends[3], nd = 0, fl = 0, all = 3 * (size_t)need;
                    char *c3 = malloc(all);
                    int q, mr;
                    for (q = 0; q < 3; q++) {
                        it[q].iat = ints[5];
                        it[q].clock = 0;
                        it[q].uid = ints[3];
                        it[q].gid = ints[4];
                        it[q].payload_off = pl ? 0 : -1;
                        it[q].payload_len = (int64_t)pl;
                    }
                    mr = sa_create_fixed_many(&ks, t, it, 3, pay, pl, c3, all, ends, &nd, &fl);
                    if (mr != SA_OK || ends[2] != all || nd != all)
                        return 4;
                    for (q = 0; q < 3; q++)
                        if (memcmp(c3 + (size_t)q * (size_t)need, a, (size_t)need))
                            return 5;
                    mr = sa_create_fixed_many(&ks, t, it, 3, pay, pl, c3, all - 1, ends, &nd, &fl);
                    if (mr != SA_E_BUFFER || nd != all)
                        return 6;
                    free(c3);
                }
                printf("tok %%.*s\n", (int)need, a);
                free(a);
                free(b);
            }
        }
        free(t); free(ctx); free(clu); free(host); free(pay);
    }
    sa_hmac_key_wipe(&hk);
    return 0;
}
"""

PIECES = ["a", "auth", "\u00e9", "\U0001F600", "\t", "\x01", '"', "\\", "/", "\x7f"]
RAW = [b"\x00", b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82"]


def _records(rng):
    def s(null_ok):
        r = rng.random()
        if null_ok and r < 0.2:
            return None
        if r < 0.05:
            return (rng.choice(PIECES) * rng.choice([100, 200, 400])).encode()   # near and past the struct
        b = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))).encode()
        if rng.random() < 0.1:
            at = rng.randint(0, len(b))
            b = b[:at] + rng.choice(RAW) + b[at:]
        return b

    def n(lo, hi):
        return rng.choice([rng.randint(lo, hi), lo, hi, lo - 1, hi + 1])

    out = []
    for _ in range(600):
        ints = (n(1, 10 ** 6), n(0, 0xFFFF), n(0, 2 ** 32 - 1), n(0, 2 ** 32 - 1),
                n(0, 2 ** 32 - 1), rng.choice([NOW, 0, -NOW, 2 ** 63 - 1, 2 ** 63 - 10 ** 6]))
        ctx, cl, host = s(False) or b"c", s(True), s(False)
        pay = rng.choice([b"", os.urandom(rng.randint(1, 64)), os.urandom(3000)])
        out.append((ints, ctx, cl, host, pay))
    return out


def test_fixed_claims_under_sanitizers(tmp_path):
    import base64
    hdr = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    src = tmp_path / "harness.c"
    src.write_text(HARNESS % {"hdr": hdr, "key": KEY.decode()})
    exe = sanitized.build(src, tmp_path / "harness")
    records = _records(random.Random(4321))
    stdin = bytearray()
    for ints, ctx, cl, host, pay in records:
        stdin += struct.pack("=6q4I", *ints, len(ctx), 0xFFFFFFFF if cl is None else len(cl),
                             len(host), len(pay))
        stdin += ctx + (cl or b"") + host + pay
    run = subprocess.run([str(exe)], input=bytes(stdin), capture_output=True,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    lines = run.stdout.decode().splitlines()
    assert len(lines) == len(records)
    ring = Keyring.from_key_bytes(KEY)   # owns the key set: kept for the whole loop
    ks = ring.snapshot().keyset
    kinds = set()
    for (ints, ctx, cl, host, pay), line in zip(records, lines):
        ttl, ver, ruid, uid, gid, iat = ints
        t = native.fixed(ttl, ver, ruid, ctx, cl, host)
        if line.startswith("init "):
            assert t is None
            kinds.add(line)
            continue
        if line.startswith("call "):
            with pytest.raises(native.Refused):
                native.fixed_credential(ks, t, iat, uid, gid, pay)
            kinds.add(line)
            continue
        assert line == "tok " + native.fixed_credential(ks, t, iat, uid, gid, pay)
        kinds.add("tok")
    # refused at init (ranges, bad strings; strings too long), at the call, and written
    assert kinds == {"init 9", "init 8", "call -9", "tok"}
