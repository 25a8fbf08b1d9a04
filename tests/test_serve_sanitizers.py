"""csrc/serve.c under AddressSanitizer, UBSan and LeakSanitizer with real
sockets: a small C driver (compiled here with every csrc/*.c) runs the core
with tiny buffers and event arrays, and this test throws a mixed, seeded
workload at it from several threads: pings over TCP and unix, bodies sent
in random chunks, forged and malformed frames, resets mid-frame, keep-alive
frames, forwards to an upstream that answers, closes or never answers,
connections the driver closes, and tokens carrying an "id" identity (the
policy reads it, as under use_client_ids), some of which the driver approves. The driver must exit 0 with no sanitizer
report and every connection accounted for."""
import os
import random
import socket
import struct
import subprocess
import threading
import time

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.rpc import AUTH_MUNGE, REQUEST_PING, body_hash_payload, pack_frame

import sanitized

KEY = b"sanitizer serve key, 32 bytes!!!"

DRIVER = r"""
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hmac.h"
#include "sa_status.h"
#include "serve.h"
#include "slurmcred.h"

static uint8_t rc_reply[24] = {0,0,0,20, 0x2D,0, 0,0x44, 0x1F,0x41, 0,0,0,4, 0,0,0,0,0,0, 0,0,0,0};

static void reply_rc(sa_serve *srv, uint64_t id, uint32_t rc, int close_after)
{
    uint8_t r[24];
    memcpy(r, rc_reply, 24);
    r[20] = (uint8_t)(rc >> 24); r[21] = (uint8_t)(rc >> 16); r[22] = (uint8_t)(rc >> 8); r[23] = (uint8_t)rc;
    if (sa_serve_reply(srv, id, r, 24, close_after) != SA_OK)
        abort();
}

int main(int argc, char **argv)
{
    static const uint8_t key[] = "%(key)s";
    sa_hmac_key hk;
    sc_key k;
    sc_keyset ks;
    sc_policy pol;
    sa_serve_config cfg;
    sa_serve_stats st;
    sa_serve_event ev[3];
    sa_serve_addr up, src;
    sa_serve *srv;
    sa_rl *rl = NULL;
    uint16_t port;
    int mode;
    unsigned long sum = 0, ids_up = 0;

    if (argc != 4)
        return 2;
    memset(&k, 0, sizeof(k));
    if (sa_hmac_key_init(&hk, key, 32) != SA_OK)
        return 3;
    k.key = &hk;
    ks.keys = &k; ks.nkeys = 1; ks.default_index = 0; ks.by_kid = 0;
    pol.max_len = 16384; pol.verifier_uid = (uint32_t)getuid(); pol.contexts = 3;
    pol.flags = SC_POL_CLIENT_IDS;
    sa_serve_config_init(&cfg);
    cfg.max_conns = 48; cfg.max_per_ip = 0; cfg.buf_size = 256; cfg.max_head = 1024;
    cfg.pool_keep = 4; cfg.max_frame = 2u << 20; cfg.max_buffered = 8u << 20;
    cfg.head_ms = 400; cfg.body_ms = 600; cfg.write_ms = 1000; cfg.up_reply_ms = 300;
    mode = atoi(argv[2]);              /* 3: refusals answered in C, auto-forward + rate limit */
    cfg.refuse_mode = mode == 3 ? 0 : mode;
    srv = sa_serve_new(&cfg);
    if (!srv || sa_serve_set_keys(srv, &ks, &pol, 0) != SA_OK ||
        sa_serve_listen_tcp(srv, "127.0.0.1", 0, &port) != SA_OK ||
        sa_serve_listen_unix(srv, argv[3]) != SA_OK)
        return 4;
    memset(&up, 0, sizeof(up));
    up.family = SA_SERVE_AF_INET; up.port = (uint16_t)atoi(argv[1]);
    up.addr[0] = 127; up.addr[3] = 1;
    src = up; src.port = 0; src.addr[3] = 7;
    if (mode == 3) {
        sa_rl_config rc = {64, 16, 1, 1, 0, 0};
        rl = sa_rl_new(&rc, NULL, 0);
        if (!rl || sa_serve_set_upstream(srv, &up, SA_SERVE_SRC_LOOPBACK) != SA_OK ||
            sa_serve_set_auto_forward(srv, 1, rl) != SA_OK)
            return 6;
    }
    printf("%%u\n", port);
    fflush(stdout);
    for (;;) {
        struct pollfd p = {0, POLLIN, 0};
        int n, i;
        if (poll(&p, 1, 0) > 0)
            break;   /* stdin readable or closed: stop */
        n = sa_serve_poll(srv, 50, ev, 3);
        if (n < 0)
            return 5;
        for (i = 0; i < n; i++) {
            size_t j;
            for (j = 0; j < ev[i].frame_len; j++)   /* every byte handed up is readable */
                sum += ev[i].frame[j];
            switch (ev[i].kind) {
            case SA_SERVE_EV_VERIFIED:
                if (ev[i].objects == SA_SERVE_OBJ_ID) {
                    ids_up++;
                    /* approve about half of the identities, by a bit of their digest */
                    if ((ev[i].id_digest[31] & 1) &&
                        sa_serve_approve_identity(srv, ev[i].id_digest) != SA_OK)
                        abort();
                }
                if (ev[i].msg_type == 2002) {
                    if (sa_serve_forward(srv, ev[i].conn_id, &up, &src, 0) != SA_OK)
                        abort();
                } else if (ev[i].msg_type == 2003) {
                    sa_serve_close(srv, ev[i].conn_id);
                } else {
                    reply_rc(srv, ev[i].conn_id, 0, ev[i].msg_type != 2004);
                }
                break;
            case SA_SERVE_EV_UNVERIFIED:
            case SA_SERVE_EV_REFUSED:
                reply_rc(srv, ev[i].conn_id, 1007, 1);
                break;
            case SA_SERVE_EV_FORWARD_ERROR:
                reply_rc(srv, ev[i].conn_id, 1012, 1);
                break;
            default:
                break;
            }
        }
    }
    sa_serve_get_stats(srv, &st);
    printf("open=%%llu accepted=%%llu verified=%%llu refused=%%llu fwd=%%llu fwd_done=%%llu "
           "fwd_err=%%llu buffered=%%llu auto=%%llu limited=%%llu ids_up=%%lu sum=%%lu\n",
           (unsigned long long)st.conns_open, (unsigned long long)st.accepted,
           (unsigned long long)st.frames_verified, (unsigned long long)st.frames_refused,
           (unsigned long long)st.forwarded, (unsigned long long)st.forward_done,
           (unsigned long long)st.forward_errors, (unsigned long long)st.buffered,
           (unsigned long long)st.auto_forwarded, (unsigned long long)st.rate_limited, ids_up, sum);
    sa_serve_free(srv);
    sa_rl_free(rl);
    unlink(argv[3]);
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver_exe(tmp_path_factory):
    out = tmp_path_factory.mktemp("serve_asan")
    src = out / "driver.c"
    src.write_text(DRIVER % {"key": KEY.decode()})
    return sanitized.build(src, out / "driver")


class Upstream:
    """Answers (mode by the last byte of the frame's body): 0 reply, 1 close, 2 stall."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        c.settimeout(5)
        try:
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
                chunk = c.recv(65536)
                if not chunk:
                    return c.close()
                data += chunk
            mode = data[-1] % 3
            if mode == 0:
                c.sendall(pack_frame(8001, b"\0\0\0\0" + b"u" * 500, flags=0x44))
                c.close()
            elif mode == 1:
                c.close()
            else:
                self.held.append(c)
        except OSError:
            c.close()


def test_serving_core_under_sanitizers(driver_exe, tmp_path):
    kr = keys.Keyring.from_key_bytes(KEY)
    other = keys.Keyring.from_key_bytes(b"x" * 32)

    def frame(msg_type=REQUEST_PING, body=b"", ring=kr, gids=None):
        extra = {} if gids is None else {"id": {"name": "u", "gecos": "", "dir": "/", "shell": "/",
                                                "gids": gids}}
        cred = tokens.create_credential(ring, uid=5, gid=6, host="h", ruid=os.getuid(), extra=extra,
                                        payload=body_hash_payload(body, msg_type))
        return pack_frame(msg_type, body, credential=cred)

    up = Upstream()
    path = str(tmp_path / "core.sock")
    # refusals answered in C, reported to the driver, then auto-forward with a rate limit
    for mode in (0, 2, 3):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
                   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
        p = subprocess.Popen([str(driver_exe), str(up.port), str(mode), path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        try:
            port = int(p.stdout.readline())
            rng = random.Random(1234 + mode)
            errors = []

            def connect():
                if rng.random() < 0.3:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(path)
                else:
                    s = socket.create_connection(("127.0.0.1", port))
                s.settimeout(5)
                return s

            def drain(s):
                try:
                    while s.recv(65536):
                        pass
                except OSError:
                    pass
                s.close()

            def client(seed):
                r = random.Random(seed)
                try:
                    for _ in range(25):
                        kind = r.randrange(11)
                        s = connect()
                        if kind == 0:                         # ping, maybe with an "id"
                            gids = r.choice([None, [1], [2, 3], list(range(r.randrange(40)))])
                            s.sendall(frame(gids=gids))
                        elif kind == 1:                       # body in random chunks
                            body = os.urandom(r.randrange(1, 20000))
                            data = frame(2001, body)
                            k = 0
                            while k < len(data):
                                step = r.randrange(1, 3000)
                                s.sendall(data[k:k + step])
                                k += step
                                if r.random() < 0.2:
                                    time.sleep(0.002)
                        elif kind == 2:                       # forged
                            s.sendall(frame(ring=other))
                        elif kind == 3:                       # forged 1 MiB, head only
                            data = frame(2001, b"\0" * (1 << 20), ring=other)
                            s.sendall(data[:600])
                        elif kind == 4:                       # garbage
                            s.sendall(os.urandom(r.randrange(1, 700)))
                            s.shutdown(socket.SHUT_WR)
                        elif kind == 5:                       # reset mid-frame
                            s.sendall(frame(2001, b"z" * 5000)[:r.randrange(1, 3000)])
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                            s.close()
                            continue
                        elif kind == 6:                       # keep-alive: two frames
                            s.sendall(frame(2004) + frame(2004)[:r.randrange(1, 200)])
                        elif kind == 7:                       # forward (upstream mode by body)
                            s.sendall(frame(2002, bytes([r.randrange(3)])))
                        elif kind == 8:                       # the driver closes it
                            s.sendall(frame(2003))
                        elif kind == 9:                       # munge: handed up
                            s.sendall(pack_frame(REQUEST_PING, b"b", credential=b"MUNGE:x:",
                                                 plugin=AUTH_MUNGE))
                        else:                                 # stall: the deadline closes it
                            s.sendall(frame()[:r.randrange(0, 40)])
                        drain(s)
                except Exception as e:   # pragma: no cover - reported below
                    errors.append(repr(e))

            threads = [threading.Thread(target=client, args=(rng.random(),)) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert not errors, errors[:3]
            for c in up.held:
                c.close()
            up.held.clear()
            time.sleep(1.0)               # deadlines expire; everything closes
            out, err = p.communicate("stop\n", timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        assert "ERROR: AddressSanitizer" not in err and "runtime error" not in err, err[-3000:]
        assert "LeakSanitizer" not in err, err[-3000:]
        assert p.returncode == 0, err[-3000:]
        stats = dict(kv.split("=") for kv in out.split())
        assert stats["open"] == "0" and stats["buffered"] == "0", out
        assert int(stats["verified"]) > 0 and int(stats["refused"]) > 0, out
        assert int(stats["fwd_done"]) > 0, out
        assert int(stats["ids_up"]) > 0, out
        if mode == 3:       # (most frames are over the limit: the upstream may fail none)
            assert int(stats["auto"]) > 0 and int(stats["limited"]) > 0, out
        else:
            assert int(stats["fwd_err"]) > 0, out
    up.sock.close()
