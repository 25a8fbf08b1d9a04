"""Decide exactly as slurmctld decides: hand-made auth/slurm and auth/jwt credentials, each
signed with the right key and sent as a REQUEST_PING both to a real slurmctld 26.05 and to a
:class:`FrameVerifier` built from the same slurm.conf (``FrameVerifier.from_slurm_conf``).

The "id" identity objects (:data:`ID_CASES`) go to a second slurmctld, with
AuthInfo=use_client_ids, and its own verifier. Every case also goes to a front end (the shim
on the serving core) built on the same verifier, which must decide it as the verifier does.

The package must never accept what slurmctld refuses (a front end built on it would pass
such a request on). Where the package refuses what slurmctld accepts, the case must be in
:data:`STRICTER` (:data:`STRICTER_JWT`, :data:`STRICTER_ID`), with its reason, and in README's
"Where we differ from Slurm" table; a documented difference that no longer holds fails too,
so the table stays true."""
from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from real_slurm import SlurmCluster, send_rpc
from slurmauth_fast.bodyhash import HASH_K12, HASH_NONE, HASH_SHA3, body_hash_payload
from slurmauth_fast.errors import SlurmAuthError
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.jws import HS256Key
from slurmauth_fast.keys import Keyring
from slurmauth_fast.rpc import AUTH_JWT, AUTH_SLURM, REQUEST_PING, pack_frame, parse_frame
from slurmauth_fast.tokens import Verifier
from test_shim import RunningShim, exchange

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)
JWT_KEY = os.urandom(48)
RING = Keyring.from_key_bytes(KEY)
HMAC_KEY = RING.default_key().key
NOW = int(time.time())
HEADER = b'{"alg":"HS256","typ":"JWT"}'
K12_PING = base64.b64encode(body_hash_payload(b"", REQUEST_PING, HASH_K12)).decode()
U32 = 0xFFFFFFFF


def base_claims() -> Dict[str, object]:
    return {"context": "auth", "exp": NOW + 600, "gid": 0, "host": "client", "iat": NOW,
            "payload": K12_PING, "ruid": 0, "uid": 0, "ver": 0x2D00}


def claims(**change: object) -> bytes:
    """The base claims with ``change`` applied (a value of ``...`` removes the claim)."""
    c = base_claims()
    for k, v in change.items():
        if v is ...:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, separators=(",", ":"), sort_keys=True).encode()


def raw(text: str) -> bytes:
    """Claims written by hand: ``{BASE}`` stands for the base claims without braces."""
    inner = claims()[1:-1].decode()
    return text.replace("{BASE}", inner).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def sha3_payload() -> str:
    return base64.b64encode(body_hash_payload(b"", REQUEST_PING, HASH_SHA3)).decode()


def none_payload() -> str:
    return base64.b64encode(body_hash_payload(b"", REQUEST_PING, HASH_NONE)).decode()


#: name -> (header bytes, claims bytes)
CASES: Dict[str, Tuple[bytes, bytes]] = {
    "baseline": (HEADER, claims()),
    "with cluster": (HEADER, claims(cluster="other-cluster")),
    "ruid any": (HEADER, claims(ruid=U32)),
    "context sack": (HEADER, claims(context="sack")),
    # header
    "alg hs256 (lower case)": (b'{"alg":"hs256","typ":"JWT"}', claims()),
    "alg HS512": (b'{"alg":"HS512","typ":"JWT"}', claims()),
    "alg none": (b'{"alg":"none","typ":"JWT"}', claims()),
    "no typ": (b'{"alg":"HS256"}', claims()),
    "typ other": (b'{"alg":"HS256","typ":"XYZ"}', claims()),
    "kid with slurm.key": (b'{"alg":"HS256","kid":"k1","typ":"JWT"}', claims()),
    "extra header field": (b'{"alg":"HS256","typ":"JWT","x":1}', claims()),
    "duplicate alg": (b'{"alg":"HS256","alg":"HS256","typ":"JWT"}', claims()),
    "header not an object": (b'["HS256"]', claims()),
    # iat / exp
    "iat missing": (HEADER, claims(iat=...)),
    "iat string": (HEADER, claims(iat=str(NOW))),
    "iat float": (HEADER, claims(iat=NOW + 0.5)),
    "iat in the future": (HEADER, claims(iat=NOW + 3600)),
    "exp missing": (HEADER, claims(exp=...)),
    "exp past": (HEADER, claims(exp=NOW - 10)),
    "exp string": (HEADER, claims(exp=str(NOW + 600))),
    "exp float": (HEADER, claims(exp=NOW + 600.5)),
    # uid / gid
    "uid missing": (HEADER, claims(uid=...)),
    "uid duplicate": (HEADER, raw('{{BASE},"uid":0}')),
    "uid float": (HEADER, claims(uid=0.0)),
    "uid string": (HEADER, claims(uid="0")),
    "uid negative": (HEADER, claims(uid=-1)),
    "uid 2^32": (HEADER, claims(uid=2 ** 32)),
    "uid 2^32-1": (HEADER, claims(uid=U32)),
    "gid missing": (HEADER, claims(gid=...)),
    "gid string": (HEADER, claims(gid="0")),
    # ver / ruid
    "ver missing": (HEADER, claims(ver=...)),
    "ver string": (HEADER, claims(ver="11520")),
    "ver other": (HEADER, claims(ver=0x2800)),
    "ruid missing": (HEADER, claims(ruid=...)),
    "ruid string": (HEADER, claims(ruid="0")),
    "ruid other uid": (HEADER, claims(ruid=4242)),
    # context / host / cluster
    "context launch": (HEADER, claims(context="launch")),
    "context missing": (HEADER, claims(context=...)),
    "context number": (HEADER, claims(context=1)),
    "host missing": (HEADER, claims(host=...)),
    "host number": (HEADER, claims(host=1)),
    "host empty": (HEADER, claims(host="")),
    "cluster number": (HEADER, claims(cluster=1)),
    # payload (the body binding)
    "payload missing": (HEADER, claims(payload=...)),
    "payload empty string": (HEADER, claims(payload="")),
    "payload not base64": (HEADER, claims(payload="!!!!")),
    "payload NONE type": (HEADER, claims(payload=none_payload())),
    "payload SHA3 type": (HEADER, claims(payload=sha3_payload())),
    "payload wrong digest": (HEADER, claims(payload=base64.b64encode(b"\x02" + bytes(32)).decode())),
    "payload unknown type": (HEADER, claims(payload=base64.b64encode(b"\x09" + bytes(32)).decode())),
    "payload number": (HEADER, claims(payload=5)),
    # unknown claims
    "unknown string": (HEADER, claims(zz="x")),
    "unknown null": (HEADER, claims(zz=None)),
    "unknown float": (HEADER, claims(zz=1.5)),
    "unknown int64 max": (HEADER, claims(zz=2 ** 63 - 1)),
    "unknown int64 min": (HEADER, claims(zz=-(2 ** 63))),
    "unknown 2^63": (HEADER, raw('{{BASE},"zz":9223372036854775808}')),
    "unknown 30 digits": (HEADER, raw('{{BASE},"zz":123456789012345678901234567890}')),
    "unknown real overflow": (HEADER, raw('{{BASE},"zz":1e400}')),
    "unknown object": (HEADER, claims(zz={"a": [1, 2, {"b": None}]})),
    "unknown 32-deep nesting": (HEADER, raw('{{BASE},"zz":' + nested(32) + "}")),
    "unknown 200-deep nesting": (HEADER, raw('{{BASE},"zz":' + nested(200) + "}")),
    "unknown unicode escape": (HEADER, raw('{{BASE},"zz":"\\u00e9\\ud83d\\ude00"}')),
    "unknown lone surrogate": (HEADER, raw('{{BASE},"zz":"\\ud800"}')),
    "unknown NUL escape": (HEADER, raw('{{BASE},"zz":"a\\u0000b"}')),
    "duplicate unknown": (HEADER, raw('{{BASE},"zz":1,"zz":2}')),
    # identity
    "id object, use_client_ids off": (HEADER, claims(id={"pw_name": "root", "pw_gecos": "",
                                                         "pw_dir": "/root", "pw_shell": "/bin/sh",
                                                         "gr_names": ["root"], "gids": [0]})),
    "id malformed, use_client_ids off": (HEADER, claims(id={"pw_name": 5})),
    "sbcast object": (HEADER, claims(sbcast={"a": 1})),
    "sbcast duplicate member": (HEADER, raw('{{BASE},"sbcast":{"a":1,"a":2}}')),
    "sbcast not an object": (HEADER, claims(sbcast=[1])),
    "net object": (HEADER, claims(net={"a": 1})),
    # JSON text
    "whitespace in claims": (HEADER, b'{ ' + claims()[1:-1].replace(b",", b" , ") + b' }'),
    "claims not an object": (HEADER, b"[1,2]"),
    "trailing garbage after claims": (HEADER, claims() + b"x"),
}

#: Cases where the package refuses a credential slurmctld 26.05 accepts, on purpose. Every
#: one needs the key to be made: a Slurm component never mints it. Keep in step with
#: README's "Where we differ from Slurm".
STRICTER: Dict[str, str] = {
    "alg hs256 (lower case)": "alg is compared exactly (RFC 7518); libjwt ignores case",
    "duplicate alg": "duplicate members are refused (RFC 7515 5.2 allows refusing); jansson keeps the last",
    "iat missing": "iat is required; Slurm reads 0",
    "iat string": "claims of the wrong type are refused; jwt_get_grant_int reads 0",
    "iat float": "claims of the wrong type are refused; jansson truncates a real",
    "uid missing": "uid is required; Slurm reads 0 (root)",
    "uid duplicate": "duplicate members are refused; jansson keeps the last",
    "uid float": "uid must be an integer; jansson truncates a real",
    "uid string": "uid must be an integer; Slurm reads 0 (root)",
    "uid negative": "uid must fit in 32 bits unsigned; Slurm wraps it",
    "uid 2^32": "uid must fit in 32 bits unsigned; Slurm truncates it",
    "gid missing": "gid is required; Slurm reads 0",
    "gid string": "gid must be an integer; Slurm reads 0",
    "ver string": "ver must be an integer when present; Slurm does not read it",
    "ruid string": "ruid must be an integer; Slurm reads 0 and compares that",
    "cluster number": "claims of the wrong type are refused; Slurm ignores cluster",
    "payload number": "claims of the wrong type are refused; Slurm treats it as absent",
    "unknown 32-deep nesting": "nesting is limited so that parsing is bounded",
    "unknown 200-deep nesting": "nesting is limited so that parsing is bounded",
    "duplicate unknown": "duplicate members are refused; jansson keeps the last",
    "sbcast duplicate member": "the sbcast and net objects are read strictly in every context; "
                               "Slurm reads them only in sbcast and net credentials",
    "sbcast not an object": "the sbcast and net objects are read strictly in every context; "
                            "Slurm reads them only in sbcast and net credentials",
}


def jwt_claims(**change: object) -> bytes:
    c: Dict[str, object] = {"exp": NOW + 600, "iat": NOW, "sun": "root"}
    for k, v in change.items():
        if v is ...:
            c.pop(k, None)
        else:
            c[k] = v
    return json.dumps(c, separators=(",", ":"), sort_keys=True).encode()


#: auth/jwt (plugin 102) cases: name -> (header, claims, packed username)
JWT_CASES: Dict[str, Tuple[bytes, bytes, object]] = {
    "jwt baseline": (HEADER, jwt_claims(), None),
    "jwt packed username": (HEADER, jwt_claims(), "root"),
    "jwt root acting for nobody": (HEADER, jwt_claims(), "nobody"),
    "jwt nobody acting for root": (HEADER, jwt_claims(sun="nobody"), "root"),
    "jwt alg hs256 (lower case)": (b'{"alg":"hs256","typ":"JWT"}', jwt_claims(), None),
    "jwt alg none": (b'{"alg":"none","typ":"JWT"}', jwt_claims(), None),
    "jwt alg HS384": (b'{"alg":"HS384","typ":"JWT"}', jwt_claims(), None),
    "jwt no typ": (b'{"alg":"HS256"}', jwt_claims(), None),
    "jwt kid": (b'{"alg":"HS256","kid":"x","typ":"JWT"}', jwt_claims(), None),
    "jwt exp missing": (HEADER, jwt_claims(exp=...), None),
    "jwt exp past": (HEADER, jwt_claims(exp=NOW - 10), None),
    "jwt exp string": (HEADER, jwt_claims(exp=str(NOW + 600)), None),
    "jwt exp float": (HEADER, jwt_claims(exp=NOW + 600.5), None),
    "jwt iat missing": (HEADER, jwt_claims(iat=...), None),
    "jwt iat string": (HEADER, jwt_claims(iat=str(NOW)), None),
    "jwt sun missing": (HEADER, jwt_claims(sun=...), None),
    "jwt sun number": (HEADER, jwt_claims(sun=0), None),
    "jwt sun unknown user": (HEADER, jwt_claims(sun="no-such-user-here"), None),
    "jwt username claim": (HEADER, jwt_claims(sun=..., username="root"), None),
    "jwt sun duplicate": (HEADER, b'{"exp":%d,"iat":%d,"sun":"nobody","sun":"root"}' % (NOW + 600, NOW), None),
    "jwt unknown 30 digits": (HEADER, jwt_claims()[:-1] + b',"zz":123456789012345678901234567890}', None),
    "jwt unknown 200-deep nesting": (HEADER, jwt_claims()[:-1] + b',"zz":' + nested(200).encode() + b"}", None),
}

#: auth/jwt cases where the package refuses what slurmctld accepts.
STRICTER_JWT: Dict[str, str] = {
    "jwt alg hs256 (lower case)": "alg is compared exactly (RFC 7518); libjwt ignores case",
    "jwt iat missing": "iat is required (scontrol token always sets it); Slurm does not read it",
    "jwt iat string": "claims of the wrong type are refused; Slurm does not read iat",
    "jwt sun unknown user": "the package must name a uid; slurmctld runs the request as nobody "
                            "(a ping passes, anything needing a user fails)",
    "jwt sun duplicate": "duplicate members are refused; jansson keeps the last",
    "jwt unknown 200-deep nesting": "nesting is limited so that parsing is bounded",
}


ID = {"name": "root", "gecos": "root", "dir": "/root", "shell": "/bin/sh", "gids": [0]}


def with_id(**change: object) -> Dict[str, object]:
    """:data:`ID` with ``change`` applied (a value of ``...`` removes the member)."""
    out = dict(ID)
    for k, v in change.items():
        if v is ...:
            out.pop(k, None)
        else:
            out[k] = v
    return out


#: AuthInfo=use_client_ids: the "id" object, read and checked (slurmctld in auth_g_verify,
#: auth_common_extract_identity). name -> claims bytes. The last one kills slurmctld 26.05.3
#: (a "gids" string: SIGSEGV), so it is sent last.
ID_CASES: Dict[str, bytes] = {
    "id well formed (gids)": claims(id=ID),
    "id well formed (groups)": claims(id=with_id(gids=..., groups={"root": 0, "adm": 4})),
    "id without groups": claims(id=with_id(gids=...)),
    "id missing": claims(),
    "id unknown member": claims(id=with_id(zz=[1, {"a": None}])),
    "id name empty": claims(id=with_id(name="")),
    "id gecos null": claims(id=with_id(gecos=None)),
    "id dir relative": claims(id=with_id(dir="root")),
    "id empty object": claims(id={}),
    "id name only": claims(id={"name": "root"}),
    "id name number": claims(id=with_id(name=5)),
    "id name null": claims(id=with_id(name=None)),
    "id duplicate name": raw('{{BASE},"id":{"name":"root","name":"x","gecos":"root","dir":"/root",'
                             '"shell":"/bin/sh","gids":[0]}}'),
    "id gids -1": claims(id=with_id(gids=[-1])),
    "id gids 2^32": claims(id=with_id(gids=[2 ** 32])),
    "id gids numeral string": claims(id=with_id(gids=["5"])),
    "id gids word": claims(id=with_id(gids=["x"])),
    "id gids float": claims(id=with_id(gids=[1.5])),
    "id gids bool": claims(id=with_id(gids=[True])),
    "id gids an object": claims(id=with_id(gids={"a": 1})),
    "id groups a list": claims(id=with_id(gids=..., groups=[1])),
    "id groups numeral string": claims(id=with_id(gids=..., groups={"a": "5"})),
    "id groups word": claims(id=with_id(gids=..., groups={"a": "x"})),
    "id groups -1": claims(id=with_id(gids=..., groups={"a": -1})),
    "id groups and gids": claims(id=with_id(groups={"root": 0})),
    "id a number": claims(id=5),
    "id a string": claims(id="x"),
    "id a list": claims(id=[1]),
    "id null": claims(id=None),
    "id gids a string": claims(id=with_id(gids="abc")),
}

#: use_client_ids cases where the package refuses an identity slurmctld 26.05 accepts: it reads
#: a missing or non-string member as NULL, converts strings and reals to gids, and takes
#: "groups" when "gids" is there too. No Slurm component writes such an "id".
STRICTER_ID: Dict[str, str] = {
    "id empty object": "name, gecos, dir and shell are required; Slurm stores NULL",
    "id name only": "name, gecos, dir and shell are required; Slurm stores NULL",
    "id name number": "identity members must be strings; Slurm stores NULL",
    "id name null": "the name must be a string; Slurm stores NULL",
    "id duplicate name": "duplicate members are refused; jansson keeps the last",
    "id gids numeral string": "gids must be integers; Slurm converts the string",
    "id gids float": "gids must be integers; Slurm truncates a real",
    "id groups numeral string": "gids must be integers; Slurm converts the string",
    "id groups and gids": "one of groups and gids; Slurm takes groups",
    "id a string": "\"id\" must be an object; Slurm reads no member of it",
    "id a list": "\"id\" must be an object; Slurm reads no member of it",
}


def package_decides(fv: FrameVerifier, frame: bytes) -> Tuple[bool, str]:
    try:
        fv.verify(frame)
    except SlurmAuthError as e:
        return False, type(e).__name__
    return True, ""


def answer_decides(reply: bytes) -> Tuple[bool, str]:
    """The decision a server's answer to the REQUEST_PING says: rc 0, or why not."""
    if not reply:
        return False, "connection closed"
    rc = int.from_bytes(bytes(parse_frame(reply).body)[:4], "big")
    return rc == 0, f"rc {rc}"


def slurmctld_decides(port: int, frame: bytes) -> Tuple[bool, str]:
    return answer_decides(send_rpc(port, frame))


def front_end_decides(front_end: RunningShim, frame: bytes) -> Tuple[bool, str]:
    return answer_decides(exchange(front_end, frame))


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY, jwt_key=JWT_KEY).start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="module")
def fv(ctld) -> FrameVerifier:
    """The package's verifier, configured by the cluster's own slurm.conf."""
    return FrameVerifier.from_slurm_conf(str(ctld.conf))


@pytest.fixture(scope="module")
def front_end(fv, tmp_path_factory):
    """The shim on the serving core, in a thread, built on the package's verifier."""
    fe = RunningShim(None, "unix", tmp_path_factory.mktemp("front-end"), verifier=fv)
    yield fe
    fe.close()


def slurm_frame(header: bytes, body: bytes) -> bytes:
    return pack_frame(REQUEST_PING, b"", credential=HMAC_KEY.sign_raw(header, body))


def jwt_frame(header: bytes, body: bytes, user: object) -> bytes:
    return pack_frame(REQUEST_PING, b"", credential=HS256Key(JWT_KEY).sign_raw(header, body),
                      plugin=AUTH_JWT, username=user)


@pytest.fixture(scope="module")
def decisions(ctld, fv) -> Dict[str, Tuple[Tuple[bool, str], Tuple[bool, str]]]:
    out = {}
    for name, (header, body) in CASES.items():
        frame = slurm_frame(header, body)
        out[name] = (slurmctld_decides(ctld.port, frame), package_decides(fv, frame))
    return out


def check_decision(decided: Tuple[Tuple[bool, str], Tuple[bool, str]], name: str,
                   stricter: Dict[str, str]) -> None:
    """Never accept what slurmctld refuses; refuse what it accepts only where ``stricter``
    says so, and the listed differences still hold."""
    (ctld_ok, ctld_why), (ours_ok, ours_why) = decided
    if ours_ok:
        assert ctld_ok, f"{name}: the package accepts what slurmctld refuses ({ctld_why})"
    elif ctld_ok:
        assert name in stricter, (f"{name}: the package refuses ({ours_why}) what slurmctld "
                                  "accepts, and the table of differences does not list it")
    if name in stricter:
        assert ctld_ok and not ours_ok, f"{name} is listed as a difference but no longer differs"


@pytest.mark.parametrize("name", list(CASES))
def test_decision_matches_slurmctld(decisions, name):
    check_decision(decisions[name], name, STRICTER)


@pytest.fixture(scope="module")
def jwt_decisions(ctld, fv) -> Dict[str, Tuple[Tuple[bool, str], Tuple[bool, str]]]:
    out = {}
    for name, (header, body, user) in JWT_CASES.items():
        frame = jwt_frame(header, body, user)
        out[name] = (slurmctld_decides(ctld.port, frame), package_decides(fv, frame))
    return out


@pytest.mark.parametrize("name", [*CASES, *JWT_CASES])
def test_the_front_end_decides_as_the_verifier(front_end, fv, name):
    """The serving core (shim, proxy) decides each case as the FrameVerifier it is built on."""
    frame = slurm_frame(*CASES[name]) if name in CASES else jwt_frame(*JWT_CASES[name])
    ours, theirs = package_decides(fv, frame), front_end_decides(front_end, frame)
    assert theirs[0] == ours[0], f"{name}: the verifier says {ours}, the front end {theirs}"


@pytest.fixture(scope="module")
def id_decisions(tmp_path_factory):
    """Each ID_CASES case decided by a slurmctld with AuthInfo=use_client_ids, the package's
    verifier built from its slurm.conf, and a front end on that verifier."""
    cluster = SlurmCluster(key=KEY, auth_info="use_client_ids").start()
    fv = FrameVerifier.from_slurm_conf(str(cluster.conf))
    fe = RunningShim(None, "unix", tmp_path_factory.mktemp("front-end-ids"), verifier=fv)
    try:
        assert fv.slurm is not None and fv.slurm.use_client_ids
        out = {}
        for name, body in ID_CASES.items():
            frame = slurm_frame(HEADER, body)
            out[name] = (slurmctld_decides(cluster.port, frame), package_decides(fv, frame),
                         front_end_decides(fe, frame))
        yield out
    finally:
        fe.close()
        cluster.cleanup()


@pytest.mark.parametrize("name", list(ID_CASES))
def test_identity_decision_matches_slurmctld(id_decisions, name):
    ctld_says, ours, front_end_says = id_decisions[name]
    check_decision((ctld_says, ours), name, STRICTER_ID)
    assert front_end_says[0] == ours[0], f"{name}: the verifier says {ours}, the front end {front_end_says}"


def test_the_verifier_is_configured_like_slurmctld(fv):
    assert fv.plugins == (AUTH_SLURM, AUTH_JWT) and fv.hash_plugins == ("k12",)
    assert fv.slurm is not None and not fv.slurm.use_client_ids and fv.slurm.verifier_uid == 0


def test_the_id_object_is_read_only_under_use_client_ids(ctld, fv):
    """slurmctld without AuthInfo=use_client_ids ignores "id" (even a malformed one); so does
    the package's verifier for this slurm.conf. With use_client_ids it reads (and checks) it."""
    frame = pack_frame(REQUEST_PING, b"", credential=HMAC_KEY.sign_raw(HEADER, claims(id={"pw_name": 5})))
    assert slurmctld_decides(ctld.port, frame)[0]
    assert fv.verify(frame).credential.identity is None
    strict = FrameVerifier(Verifier(RING, verifier_uid=0, use_client_ids=True))
    with pytest.raises(SlurmAuthError):
        strict.verify(frame)


@pytest.mark.parametrize("name", list(JWT_CASES))
def test_jwt_decision_matches_slurmctld(jwt_decisions, name):
    check_decision(jwt_decisions[name], name, STRICTER_JWT)


def test_baseline_is_accepted_by_both(decisions):
    assert decisions["baseline"] == ((True, "rc 0"), (True, ""))


def test_the_readme_lists_every_difference():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = re.search(r"## Where we differ from Slurm\n(.*?)(\n## |\Z)", text, re.S)
    assert section, "README has no 'Where we differ from Slurm' section"
    missing = [name for name in {**STRICTER, **STRICTER_JWT, **STRICTER_ID}
               if f"`{name}`" not in section.group(1)]
    assert not missing, f"README does not list: {missing}"


def summary(decisions) -> List[str]:
    """One line per case (for a look with -s): slurmctld, package."""
    return [f"{n:40} ctld={'ok' if c[0] else c[1]:18} ours={'ok' if p[0] else p[1]}"
            for n, (c, p) in decisions.items()]
