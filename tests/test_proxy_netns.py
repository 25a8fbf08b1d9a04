"""The proxy's remote-client transparency (IP_TRANSPARENT), proven across network namespaces
the test creates: a client namespace and a server namespace, each joined to this one by a veth
pair, with the policy routing that HAProxy's ``usesrc clientip`` needs (packets from the server
are delivered locally, so replies to the client's address reach the proxy's transparent
socket). The upstream, in the server namespace, records the peer address of each connection,
which is what slurmctld takes as the client's address. Needs root (namespaces, veth,
CAP_NET_ADMIN); skipped elsewhere with the reason. Only the addresses and names the test
creates are touched, and removed afterwards."""
import os
import shutil
import subprocess
import sys
import threading

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.proxy import ControllerProxy, can_set_ip_transparent
from test_proxy import KEY, SLURM_USER, ping

UPSTREAM = r"""
import socket, struct, sys
s = socket.socket()
s.bind((sys.argv[1], 0))
s.listen(16)
print("port", s.getsockname()[1], flush=True)
while True:
    c, peer = s.accept()
    n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
    c.recv(n, socket.MSG_WAITALL)
    print("peer", peer[0], flush=True)
    c.sendall(bytes([0, 0, 0, 20, 0x2D, 0, 0, 0x44, 0x1F, 0x41, 0, 0, 0, 4] + [0] * 10))
    c.close()
"""

CLIENT = r"""
import socket, sys
frame = open(sys.argv[3], "rb").read()
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10) as c:
    c.sendall(frame)
    print(c.recv(100).hex())
"""


def ip(*args):
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


class Namespaces:
    """client ns (C_IP) -- veth -- this ns (PROXY_IP | SERVER_GW) -- veth -- server ns (SERVER_IP)"""

    def __init__(self):
        tag = f"sa{os.getpid() % 100000}"
        net = 10 + os.getpid() % 200             # 10.213.<net>.x and 10.214.<net>.x
        self.client_ns, self.server_ns = f"{tag}c", f"{tag}s"
        self.c_host, self.s_host = f"{tag}c0", f"{tag}s0"
        self.proxy_ip, self.client_ip = f"10.213.{net}.1", f"10.213.{net}.2"
        self.server_gw, self.server_ip = f"10.214.{net}.1", f"10.214.{net}.2"
        self.table = str(20000 + os.getpid() % 10000)
        self.made = []

    def setup(self):
        ip("netns", "add", self.client_ns)
        self.made.append(("netns", "del", self.client_ns))
        ip("netns", "add", self.server_ns)
        self.made.append(("netns", "del", self.server_ns))
        for host, peer, ns, here, there in (
                (self.c_host, self.c_host[:-1] + "1", self.client_ns, self.proxy_ip, self.client_ip),
                (self.s_host, self.s_host[:-1] + "1", self.server_ns, self.server_gw, self.server_ip)):
            ip("link", "add", host, "type", "veth", "peer", "name", peer)
            self.made.append(("link", "del", host))
            ip("link", "set", peer, "netns", ns)
            ip("addr", "add", f"{here}/24", "dev", host)
            ip("link", "set", host, "up")
            ip("-n", ns, "addr", "add", f"{there}/24", "dev", peer)
            ip("-n", ns, "link", "set", peer, "up")
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "route", "add", "default", "via", here)
        # what arrives from the server is delivered here, whatever its destination: the
        # replies to the client's address go to the proxy's IP_TRANSPARENT socket
        ip("route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", self.table)
        self.made.append(("route", "del", "local", "0.0.0.0/0", "dev", "lo", "table", self.table))
        ip("rule", "add", "iif", self.s_host, "from", self.server_ip, "lookup", self.table)
        self.made.append(("rule", "del", "iif", self.s_host, "from", self.server_ip, "lookup",
                          self.table))

    def teardown(self):
        for args in reversed(self.made):
            subprocess.run(["ip", *args], capture_output=True, timeout=10)

    def run_in(self, ns, code, *args, **kw):
        return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code, *args],
                                stdout=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def netns():
    if shutil.which("ip") is None:
        pytest.skip("no ip(8)")
    if os.geteuid() != 0 or not can_set_ip_transparent():
        pytest.skip("needs root with CAP_NET_ADMIN (network namespaces, IP_TRANSPARENT)")
    ns = Namespaces()
    try:
        ns.setup()
    except subprocess.CalledProcessError as e:
        ns.teardown()
        pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
    yield ns
    ns.teardown()


@pytest.fixture(scope="module")
def upstream(netns):
    p = netns.run_in(netns.server_ns, UPSTREAM, netns.server_ip)
    line = p.stdout.readline().split()
    assert line and line[0] == "port", "the upstream did not start in the server namespace"
    yield p, int(line[1])
    p.kill()
    p.wait(10)


def through_proxy(netns, upstream, tmp_path, transparent):
    """One ping from the client namespace through a proxy in this namespace: (reply hex,
    the peer address the upstream saw)."""
    proc, port = upstream
    ring = keys.Keyring.from_key_bytes(KEY)
    proxy = ControllerProxy(FrameVerifier(tokens.Verifier(ring)), (netns.server_ip, port),
                            slurm_user_uid=SLURM_USER, transparent=transparent, metrics=False)
    listen = proxy.core.listen_tcp(netns.proxy_ip, 0)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_ms": 50})
    thread.start()
    try:
        frame = tmp_path / "ping.frame"
        frame.write_bytes(ping(ring))
        client = netns.run_in(netns.client_ns, CLIENT, netns.proxy_ip, str(listen), str(frame))
        out, _ = client.communicate(timeout=30)
        assert client.returncode == 0, "the client in its namespace failed"
        seen = proc.stdout.readline().split()
        return out.strip(), seen[1] if seen and seen[0] == "peer" else None
    finally:
        proxy.stop()
        thread.join(10)
        proxy.close()


OK_REPLY = "000000142d0000441f410000000400000000000000000000"


@pytest.mark.parametrize("mode", ["on", "auto"])
def test_remote_client_reaches_upstream_from_its_own_address(netns, upstream, tmp_path, mode):
    reply, peer = through_proxy(netns, upstream, tmp_path, mode)
    assert reply == OK_REPLY
    assert peer == netns.client_ip


def test_transparency_off_shows_the_proxy_address(netns, upstream, tmp_path):
    reply, peer = through_proxy(netns, upstream, tmp_path, "off")
    assert reply == OK_REPLY
    assert peer == netns.server_gw
