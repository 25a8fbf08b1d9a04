"""csrc/sack_serve.c (the kiosk's C loop) under AddressSanitizer, UBSan and
LeakSanitizer with real sockets: a small C driver (compiled here with every
csrc/*.c) runs the loop with a tiny event array and connection table, and this
test throws a mixed, seeded workload at it from several threads: creates C
signs (small and large payloads, the latter written in parts to readers that
wait), requests sent a byte at a time, verifies and malformed creates handed
to the driver (answered, closed or left to the request deadline), garbage,
oversized and unknown-rpc headers, resets mid-request and silent connections.
The driver must exit 0 with no sanitizer report and every connection closed;
every credential it signed must verify."""
import base64
import json
import os
import random
import socket
import struct
import subprocess
import threading
import time

import pytest

from slurmauth_fast import keys, sack, tokens
from slurmauth_fast.sack.wire import unpack_token_reply

import sanitized

KEY = b"sanitizer sack key, 32 bytes!!!!"

DRIVER = r"""
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "create.h"
#include "hmac.h"
#include "sa_status.h"
#include "sack_serve.h"
#include "slurmcred.h"

int main(int argc, char **argv)
{
    static const uint8_t key[] = "%(key)s";
    static const char hdr[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    static const uint8_t rc0[4] = {0, 0, 0, 0};
    sa_hmac_key hk;
    sc_key k;
    sc_keyset ks;
    sa_sack_config cfg;
    sa_sack_stats st;
    sa_sack_event ev[2];
    struct sockaddr_un sun;
    sa_sack *s;
    int lfd;
    unsigned long sum = 0, round = 0;

    if (argc != 2)
        return 2;
    memset(&k, 0, sizeof(k));
    if (sa_hmac_key_init(&hk, key, 32) != SA_OK)
        return 3;
    k.key = &hk;
    k.hdr = hdr;
    k.hdr_len = strlen(hdr);
    ks.keys = &k; ks.nkeys = 1; ks.default_index = 0; ks.by_kid = 0;
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strncpy(sun.sun_path, argv[1], sizeof(sun.sun_path) - 1);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(lfd, 128) != 0)
        return 4;
    memset(&cfg, 0, sizeof(cfg));
    cfg.listen_fd = lfd;
    cfg.wake_fd = -1;
    cfg.max_conns = 16;
    cfg.max_per_uid = 12;
    cfg.max_request = 1u << 20;
    cfg.read_ns = 300000000;
    cfg.request_ns = 600000000;
    s = sa_sack_new(&cfg);
    if (!s || sa_sack_set_uid_cap(s, 12345, 3) != SA_OK ||
        sa_sack_set_create(s, 1, &ks, 60, 0x2D00, "san", 3, "host", 4) != SA_OK)
        return 5;
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p = {0, POLLIN, 0};
        int n, i;
        if (poll(&p, 1, 0) > 0)
            break;   /* stdin readable or closed: stop */
        n = sa_sack_poll(s, 50, ev, 2);
        if (n < 0)
            return 6;
        for (i = 0; i < n; i++) {
            size_t j;
            for (j = 0; j < ev[i].body_len; j++)   /* every byte handed up is readable */
                sum += ev[i].body[j];
            if (ev[i].kind != SA_SACK_EV_REQUEST)
                continue;
            if (ev[i].rpc == 64002) {
                if (sa_sack_reply(s, ev[i].conn_id, rc0, 4) != SA_OK)
                    abort();
            } else if (ev[i].body_len %% 3 == 0) {
                if (sa_sack_close(s, ev[i].conn_id) != SA_OK)
                    abort();
            } else if (ev[i].body_len %% 3 == 1) {
                /* a reply larger than the inline buffer, from the heap */
                static uint8_t big[3000];
                if (sa_sack_reply(s, ev[i].conn_id, big, sizeof big) != SA_OK)
                    abort();
            }
            /* else: left unanswered, for the request deadline to close */
        }
        if (round %% 10 == 5) {   /* identities on, one cached for this process's ids */
            static const char id[] = "id\0{\"gid\":1,\"name\":\"x\"}";
            if (sa_sack_set_identities(s, 1) != SA_OK ||
                sa_sack_set_identity(s, (uint32_t)getuid(), (uint32_t)getgid(), id, sizeof id,
                                     200000000) != SA_OK ||
                sa_sack_set_identity(s, 12345, 6, id, sizeof id, 1) != SA_OK)
                return 8;
        } else if (round %% 10 == 9) {
            sa_sack_clear_identities(s);
        } else if (round %% 10 == 0 && sa_sack_set_identities(s, 0) != SA_OK) {
            return 9;
        }
        if (++round %% 7 == 0 &&   /* swap the create policy now and then, like a reload */
            sa_sack_set_create(s, 1, &ks, 60, 0x2D00, round %% 2 ? NULL : "san",
                               round %% 2 ? 0 : 3, "host", 4) != SA_OK)
            return 7;
    }
    sa_sack_get_stats(s, &st);
    printf("open=%%llu accepted=%%llu created=%%llu handed_up=%%llu read_to=%%llu req_to=%%llu "
           "bad=%%llu over=%%llu id_hits=%%llu sum=%%lu\n",
           (unsigned long long)st.conns_open, (unsigned long long)st.accepted,
           (unsigned long long)st.created, (unsigned long long)st.handed_up,
           (unsigned long long)st.read_timeouts, (unsigned long long)st.request_timeouts,
           (unsigned long long)st.bad_requests, (unsigned long long)st.over_uid_cap,
           (unsigned long long)st.id_hits, sum);
    sa_sack_free(s);
    close(lfd);
    unlink(argv[1]);
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver_exe(tmp_path_factory):
    out = tmp_path_factory.mktemp("sack_asan")
    src = out / "driver.c"
    src.write_text(DRIVER % {"key": KEY.decode()})
    return sanitized.build(src, out / "driver")


def hdr(length, rpc):
    return struct.pack(">HII", 0x2D00, length, rpc)


def test_kiosk_loop_under_sanitizers(driver_exe, tmp_path):
    ring = keys.Keyring.from_key_bytes(KEY)
    path = str(tmp_path / "k.sock")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    p = subprocess.Popen([str(driver_exe), path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    signed = []
    errors = []
    try:
        assert p.stdout.readline().strip() == "ready"
        token = tokens.create_credential(ring, uid=0, gid=0, context="sack", host="h")

        def exchange(s):
            out = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except OSError:
                pass
            s.close()
            return out

        def client(seed):
            r = random.Random(seed)
            try:
                for _ in range(40):
                    kind = r.randrange(10)
                    s = socket.socket(socket.AF_UNIX)
                    s.settimeout(10)
                    s.connect(path)
                    if kind == 0:                       # create, signed in C
                        s.sendall(sack.encode_create_request(r.randrange(2 ** 32), os.urandom(r.randrange(0, 60))))
                        reply = exchange(s)
                        if reply:
                            signed.append(reply)
                        continue
                    if kind == 1:                       # large payload, read late: partial writes
                        s.sendall(sack.encode_create_request(0, os.urandom(r.randrange(300000, 700000))))
                        time.sleep(0.05)
                        reply = exchange(s)
                        if reply:
                            signed.append(reply)
                        continue
                    if kind == 2:                       # a byte at a time
                        data = sack.encode_create_request(7, b"slow")
                        for b in range(len(data)):
                            s.sendall(data[b:b + 1])
                    elif kind == 3:                     # verify: handed up, heap buffer
                        s.sendall(sack.encode_verify_request(token))
                    elif kind == 4:                     # malformed create, handed up
                        body = os.urandom(r.randrange(1, 40))
                        s.sendall(hdr(8 + len(body), sack.SACK_CREATE) + body)
                    elif kind == 5:                     # garbage / oversized / unknown rpc
                        s.sendall(r.choice([os.urandom(r.randrange(1, 64)),
                                            hdr(0xFFFFFFFF, sack.SACK_CREATE),
                                            hdr(3, sack.SACK_CREATE), hdr(20, 77) + bytes(12)]))
                        s.shutdown(socket.SHUT_WR)
                    elif kind == 6:                     # reset mid-request
                        s.sendall(hdr(5000, sack.SACK_VERIFY) + bytes(r.randrange(0, 2000)))
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        s.close()
                        continue
                    elif kind == 7:                     # silent: the read deadline closes it
                        s.sendall(hdr(40, sack.SACK_CREATE)[:r.randrange(0, 10)])
                    elif kind == 8:                     # half a body, then EOF
                        s.sendall(hdr(40, sack.SACK_CREATE) + bytes(10))
                        s.shutdown(socket.SHUT_WR)
                    else:                               # the client leaves before the reply
                        s.sendall(sack.encode_create_request(1, b"x" * 5000))
                        s.close()
                        continue
                    exchange(s)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert not any(t.is_alive() for t in threads)
        time.sleep(1.0)   # past every deadline: whatever is left open is closed by then
        out, err = p.communicate("", timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not errors, errors[:3]
    assert p.returncode == 0, err[-4000:]
    assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err[-4000:]
    assert "LeakSanitizer" not in err, err[-4000:]
    stats = dict(kv.split("=") for kv in out.split())
    assert stats["open"] == "0"
    assert int(stats["created"]) > 0 and int(stats["handed_up"]) > 0
    assert int(stats["read_to"]) > 0 and int(stats["req_to"]) > 0 and int(stats["bad"]) > 0
    # (a create handed up while identities are on may get the driver's 3000 zero bytes)
    signed = [reply for reply in signed if reply != bytes(3000)]
    assert signed
    for reply in signed:   # each one byte for byte the package's credential for its claims
        token = unpack_token_reply(reply).decode()
        seg = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
        payload = base64.b64decode(claims["payload"]) if "payload" in claims else None
        assert token == tokens.create_credential(
            ring, uid=os.getuid(), gid=os.getgid(), context="sack", ruid=claims["ruid"],
            payload=payload, ttl=60, cluster=claims.get("cluster"), host="host", now=claims["iat"],
            extra={"id": claims["id"]} if "id" in claims else None)
