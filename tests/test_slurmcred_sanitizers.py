"""csrc/slurmcred.c under AddressSanitizer and UBSan: thousands of signed
tokens with mutated headers and claims go through sc_verify() with a scratch
buffer of exactly sc_scratch_need() bytes (so any overrun is caught) and
through the batch calls, sc_verify_list() (each token in its own exact-size
allocation) and sc_verify_many() (joined); every status must equal the
extension's."""
import json
import os
import random
import struct
import subprocess


from slurmauth_fast import errors as E
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier

import sanitized

KEY = b"sanitizer-key-0123456789abcdef!!"
NOW = 1_700_000_000

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "slurmcred.h"
#include "hmac.h"

static int rd(void *p, size_t n) { return fread(p, 1, n, stdin) == n; }

int main(void)
{
    static const char hdr[] = "%(hdr)s";
    uint8_t key[32];
    uint32_t n, count = 0;
    sa_hmac_key hk;
    sc_key k;
    sc_keyset ks;
    sc_policy pol = {1 << 16, 500, 3, SC_POL_CLIENT_IDS};
    char **toks = NULL;
    size_t *lens = NULL;

    memcpy(key, "%(key)s", 32);
    sc_scan_select(SC_SCAN_AUTO);   /* the widest scanner (and the claims' fast path) for sc_verify too */
    sa_hmac_key_init(&hk, key, 32);
    k.kid = (const uint8_t *)"k1"; k.kid_len = 2; k.key = &hk; k.exp = 0;
    k.hdr = hdr; k.hdr_len = strlen(hdr);
    ks.keys = &k; ks.nkeys = 1; ks.default_index = 0; ks.by_kid = 1;
    while (rd(&n, 4)) {
        char *tok = malloc(n ? n : 1);
        uint8_t *scratch;
        size_t need = sc_scratch_need(n);
        if (!rd(tok, n))
            return 2;
        scratch = malloc(need);
        printf("%%d\n", sc_verify(&ks, &pol, tok, n, %(now)d, scratch, need));
        free(scratch);
        toks = realloc(toks, (count + 1) * sizeof(*toks));
        lens = realloc(lens, (count + 1) * sizeof(*lens));
        toks[count] = tok;
        lens[count++] = n;
    }
    {
        /* the batch calls: listed, each token in its own exact-size allocation
         * (a read past a token's end is caught), then separated in one */
        size_t plen = count ? count - 1 : 0, i, pass;
        char *packed;
        uint8_t *work, *out;
        size_t wneed, oneed;
        for (i = 0; i < count; i++)
            plen += lens[i];
        packed = malloc(plen ? plen : 1);
        for (i = 0, plen = 0; i < count; i++) {
            if (i)
                packed[plen++] = SC_BATCH_SEP;
            memcpy(packed + plen, toks[i], lens[i]);
            plen += lens[i];
        }
        wneed = sc_batch_work_need(&pol, plen);
        oneed = sc_batch_out_need(count, plen);
        work = malloc(wneed + 1);
        out = malloc(oneed + 1);
        for (pass = 0; pass < 2; pass++) {
            int rc = pass == 0
                ? sc_verify_list(&ks, &pol, (const char *const *)toks, lens, count, %(now)d,
                                 work, wneed, out, oneed)
                : sc_verify_many(&ks, &pol, packed, plen, count, %(now)d, work, wneed, out, oneed);
            if (rc != 0)
                return 3;
            for (i = 0; i < count; i++)
                printf("%%d\n", ((const int32_t *)(const void *)(out + 8 * count))[i]);
        }
        for (i = 0; i < count; i++)
            free(toks[i]);
        free(packed); free(work); free(out); free(toks); free(lens);
    }
    sa_hmac_key_wipe(&hk);
    return 0;
}
"""


def _tokens():
    ring = Keyring.from_jwks(json.dumps({"keys": [{"kid": "k1", "kty": "oct", "alg": "HS256",
                                                   "k": __import__("base64").b64encode(KEY).decode()}]}))
    sign = ring.default_key().key.sign_raw
    rnd = random.Random(1234)
    base = json.dumps({"iat": NOW, "exp": NOW + 60, "ver": 11520, "ruid": 4294967295,
                       "context": "auth", "cluster": "c\u00e9", "uid": 1000, "gid": 100,
                       "host": "n\\u00e9\\ud83d\\ude00", "payload": "AQID",
                       "id": {"name": "a", "groups": {"g": 1}}, "zz": [1, {"a": None}]},
                      separators=(",", ":")).encode().replace(b"\\\\u", b"\\u")
    # long escaped strings: their unescaped copies fill the scratch tail
    long_escaped = json.dumps({"iat": NOW, "exp": NOW + 60, "ruid": 500, "context": "sack",
                               "uid": 1, "gid": 2, "host": "\u00e9" * 60, "cluster": "\t" * 50,
                               "payload": "AQID" * 20}).encode()  # ensure_ascii: all escaped
    # claims as libjwt writes them (the fast path's input), short and around its
    # length limit (SC_FAST_MAX, 1024 bytes)
    def canonical(payload_len):
        return json.dumps({"iat": NOW, "exp": NOW + 60, "ver": 11520, "ruid": 4294967295,
                           "context": "auth", "cluster": "c", "uid": 1000, "gid": 100, "host": "n1",
                           "payload": "A" * payload_len, "id": {"name": "a", "uid": 1000}},
                          separators=(",", ":"), sort_keys=True).encode()
    canonical_lens = [4, 40, 789, 790, 852, 853, 854, 900, 917, 1000]   # claims of 175 to 1171 bytes
    headers = [b'{"alg":"HS256","kid":"k1","typ":"JWT"}', b'{"alg":"HS256"}',
               b'{"alg":"\\u0048S256","kid":"\\u006b1"}',
               b'{"alg":"HS256","kid":"k1","kid":"k1"}', b'{"kid":"k1","alg":"none"}', b"[]"]
    alphabet = b'{}[]",:\\ u0123456789abcdefE.-+tn\x00\x1f\x7f\xc3\xa9\xed\xa0\x80\xf4\x90'
    out = []
    for i in range(1500):
        kind = i % 4
        claims = bytearray(base if kind == 0 else long_escaped if kind == 1
                           else canonical(rnd.choice(canonical_lens)))
        for _ in range(rnd.randint(0, 4)):
            op, pos = rnd.randrange(3), rnd.randrange(len(claims) + 1)
            if op == 0 and claims:
                del claims[min(pos, len(claims) - 1)]
            elif op == 1:
                claims.insert(pos, rnd.choice(alphabet))
            elif claims:
                claims[min(pos, len(claims) - 1)] = rnd.choice(alphabet)
        hdr = rnd.choice(headers)
        if not claims:
            claims = bytearray(b"{")
        tok = sign(hdr, bytes(claims)).encode()
        if i % 10 == 0:  # mangle the compact form too
            cut = rnd.randrange(len(tok))
            tok = tok[:cut] + bytes([rnd.choice(b".=A_-\x00")]) + tok[cut + 1:]
        out.append(tok)
    return out


def test_sanitizers(tmp_path):
    import base64
    hdr = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k1","typ":"JWT"}').rstrip(b"=").decode()
    src = tmp_path / "harness.c"
    src.write_text(HARNESS % {"hdr": hdr, "key": KEY.decode(), "now": NOW})
    exe = sanitized.build(src, tmp_path / "harness")
    tokens = _tokens()
    stdin = b"".join(struct.pack("=I", len(t)) + t for t in tokens)
    run = subprocess.run([str(exe)], input=stdin, capture_output=True,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=1"))
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-3000:]
    statuses = [int(x) for x in run.stdout.split()]
    n = len(tokens)
    assert len(statuses) == 3 * n
    single, listed, separated = statuses[:n], statuses[n:2 * n], statuses[2 * n:]
    assert single == listed == separated
    ring = Keyring.from_jwks(json.dumps({"keys": [{"kid": "k1", "kty": "oct", "alg": "HS256",
                                                   "k": base64.b64encode(KEY).decode()}]}))
    v = Verifier(ring, verifier_uid=500, max_len=1 << 16, use_client_ids=True)
    for tok, st in zip(tokens, single):
        try:
            v.verify(tok, now=NOW)
            got = 0
        except E.SlurmAuthError as e:
            got = e.status
        assert got == st or (st == 0 and got is None), tok
    assert single.count(0) > 20 and len(set(single)) > 10  # the mutations reach many rules
