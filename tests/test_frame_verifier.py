"""The frame verifier's seams: one C call with a complete verdict (status,
offset, claim; "no credential" apart from "another plugin"), dispatch on the
plugin id for a daemon configured with AuthType + AuthAltTypes, one result
type for every plugin; the C status table; the top-level API."""
import os
import pwd

import pytest

import slurmauth_fast
from slurmauth_fast import errors as E
from slurmauth_fast import rpc
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast._bindings.status import CLAIM_NAMES, STATUS
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.jws import HS256Key
from slurmauth_fast.jwt import JWTVerifier, create_token
from slurmauth_fast.keys import Keyring
from slurmauth_fast.rpc import FrameVerifier, VerifiedRpc
from slurmauth_fast.verifier import Verifier

from munged import munged  # noqa: F401 (the fixture)

KEY = os.urandom(64)
JWT_KEY = bytes(range(32))
BODY = b"\x00\x00\x00\x07body"
MSG = 2009
ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(scope="module")
def ring():
    return Keyring.from_key_bytes(KEY)


@pytest.fixture(scope="module")
def slurm(ring):
    return Verifier(ring, verifier_uid=0)


def slurm_frame(ring, **kw):
    token = slurmauth_fast.create_credential(ring, uid=1000, gid=1001, host="n1",
                                             payload=body_hash_payload(BODY, MSG), **kw)
    return rpc.pack_frame(MSG, BODY, credential=token)


def jwt_frame(username=ME, token_user=ME):
    token = create_token(HS256Key(JWT_KEY), token_user, caller_uid=0)
    return rpc.pack_frame(MSG, BODY, credential=token, plugin=rpc.AUTH_JWT, username=username)


def verdict_of(frame, slurm, flags=0):
    scratch = ffi.new("uint8_t[]", lib.sc_scratch_need(len(frame)))
    f = ffi.new("sa_rpc_frame *")
    v = ffi.new("sa_frame_verdict *")
    opts, _, _ = rpc.parse_options()
    rc = lib.sa_verify_frame_slurm(frame, len(frame), opts, f, slurm.keyring.snapshot().keyset,
                                   slurm.c_policy, -1, flags, scratch, len(scratch), v)
    assert rc == v.status
    return v, f


# ---- the C verdict ---------------------------------------------------------------

def test_verdict_names_the_stage_offset_and_claim(ring, slurm):
    v, _ = verdict_of(slurm_frame(ring), slurm)
    assert (v.status, v.stage) == (0, lib.SA_STAGE_NONE)
    v, _ = verdict_of(slurm_frame(ring)[:-1], slurm)
    assert v.stage == lib.SA_STAGE_PARSE and v.status == lib.SA_E_RPC_TRUNCATED
    v, _ = verdict_of(slurm_frame(ring, ruid=4242), slurm)
    assert (v.status, v.stage) == (lib.SC_E_RUID, lib.SA_STAGE_TOKEN)
    bad_uid = ring.default_key().key.sign({"iat": 1, "exp": 2 ** 40, "ruid": 4294967295,
                                          "uid": "1000", "gid": 1, "host": "n", "context": "auth"})
    v, _ = verdict_of(rpc.pack_frame(MSG, BODY, credential=bad_uid), slurm)
    assert (v.status, v.stage) == (lib.SC_E_INT_TYPE, lib.SA_STAGE_TOKEN)
    assert CLAIM_NAMES[v.claim] == "uid"
    with pytest.raises(E.ClaimsError) as e:
        rpc.verify_rpc(rpc.pack_frame(MSG, BODY, credential=bad_uid), slurm)
    assert e.value.claim == "uid"
    v, _ = verdict_of(rpc.pack_frame(MSG + 1, BODY, credential=slurmauth_fast.create_credential(
        ring, uid=1, gid=1, payload=body_hash_payload(BODY, MSG))), slurm)
    assert (v.status, v.stage, v.claim) == (lib.SA_E_HASH_MISMATCH, lib.SA_STAGE_BODY_HASH, -1)


def test_verdict_tells_no_credential_from_another_plugin(slurm):
    v, _ = verdict_of(rpc.pack_frame(MSG, BODY, flags=rpc.NO_AUTH_CRED), slurm)
    assert (v.status, v.stage) == (lib.SA_E_FRAME_NO_AUTH, lib.SA_STAGE_AUTH)
    v, _ = verdict_of(rpc.pack_frame(MSG, BODY, credential=None), slurm)
    assert v.status == lib.SA_E_FRAME_NULL_CRED
    v, f = verdict_of(jwt_frame(), slurm)
    assert v.status == lib.SA_E_FRAME_PLUGIN and f.auth_plugin == rpc.AUTH_JWT


def test_claim_errors_carry_the_claim(ring, slurm):
    with pytest.raises(E.AudienceError) as e:
        rpc.verify_rpc(slurm_frame(ring, ruid=4242), slurm)
    assert e.value.claim == "ruid"
    with pytest.raises(E.ExpiredError) as e:
        slurm.verify(slurmauth_fast.create_credential(ring, uid=1, gid=1, ttl=1, now=1000))
    assert e.value.claim == "exp"
    with pytest.raises(E.SignatureError) as e:
        slurm.verify(slurmauth_fast.create_credential(Keyring.from_key_bytes(b"x" * 32), uid=1, gid=1))
    assert e.value.claim is None


# ---- dispatch ------------------------------------------------------------------------

def test_slurm_and_jwt_frames_verify_in_one_call(ring, slurm):
    fv = FrameVerifier(slurm, jwt=JWTVerifier(hs256_key=HS256Key(JWT_KEY)),
                       auth_type="auth/slurm", auth_alt_types=["auth/jwt"])
    assert fv.plugins == (rpc.AUTH_SLURM, rpc.AUTH_JWT)
    got = fv.verify(slurm_frame(ring))
    assert isinstance(got, VerifiedRpc) and (got.uid, got.gid, got.plugin) == (1000, 1001, 103)
    assert bytes(got.frame.body) == BODY
    got = fv.verify(jwt_frame())
    assert isinstance(got, VerifiedRpc) and got.plugin == rpc.AUTH_JWT
    assert (got.uid, got.credential.username) == (os.getuid(), ME)
    assert fv.verify(rpc.parse_frame(jwt_frame())).credential.username == ME
    with pytest.raises(E.SignatureError):
        FrameVerifier(slurm, jwt=JWTVerifier(hs256_key=HS256Key(b"k" * 32))).verify(jwt_frame())


def test_unconfigured_plugins_and_missing_credentials(ring, slurm):
    only_slurm = FrameVerifier(slurm)
    with pytest.raises(E.UnsupportedAuthPluginError, match="is not auth/slurm"):
        only_slurm.verify(jwt_frame())
    both = FrameVerifier(slurm, jwt=JWTVerifier(hs256_key=HS256Key(JWT_KEY)))
    with pytest.raises(E.UnsupportedAuthPluginError, match="auth/slurm, auth/jwt"):
        both.verify(rpc.pack_frame(MSG, BODY, credential="MUNGE:x:", plugin=rpc.AUTH_MUNGE))
    with pytest.raises(E.MissingCredentialError, match="NO_AUTH_CRED"):
        both.verify(rpc.pack_frame(MSG, BODY, flags=rpc.NO_AUTH_CRED))
    only_jwt = FrameVerifier(jwt=JWTVerifier(hs256_key=HS256Key(JWT_KEY)))
    assert only_jwt.verify(bytearray(jwt_frame())).plugin == rpc.AUTH_JWT
    with pytest.raises(E.UnsupportedAuthPluginError):
        only_jwt.verify(slurm_frame(ring))
    with pytest.raises(E.FrameTruncatedError):
        only_jwt.verify(jwt_frame()[:-1])


def test_configuration_errors(slurm):
    with pytest.raises(E.BadArgumentError):
        FrameVerifier()
    with pytest.raises(E.BadArgumentError, match="no verifier"):
        FrameVerifier(slurm, auth_type="auth/slurm", auth_alt_types=["auth/jwt"])
    with pytest.raises(E.BadArgumentError, match="unknown auth plugin"):
        FrameVerifier(slurm, auth_type="auth/none")
    with pytest.raises(TypeError):
        FrameVerifier(slurm).verify("not bytes")


def test_munge_frames_dispatch(slurm, munged):  # noqa: F811
    from slurmauth_fast.munge import MungeContext, pack_munge_rpc
    ctx = MungeContext(socket=munged.socket)
    fv = FrameVerifier(slurm, munge=ctx, auth_type="auth/munge", auth_alt_types=["auth/slurm"])
    got = fv.verify(pack_munge_rpc(MSG, BODY, context=ctx))
    assert got.plugin == rpc.AUTH_MUNGE and (got.uid, got.gid) == (os.getuid(), os.getgid())
    with pytest.raises(E.BodyHashMismatchError):
        frame = pack_munge_rpc(MSG, BODY, context=ctx)
        fv.verify(frame[:-1] + bytes([frame[-1] ^ 1]))


# ---- the status table and the API --------------------------------------------------

def test_every_c_status_has_an_exception():
    names = [n for n in dir(lib) if n.startswith(("SA_E_", "SC_E_"))]
    assert names and all(getattr(lib, n) in STATUS for n in names)
    assert all(issubclass(exc, E.SlurmAuthError) and msg for exc, msg in STATUS.values())


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError):
        HS256Key("not bytes")
    with pytest.raises(TypeError):
        rpc.parse_frame("not bytes")
    with pytest.raises(ValueError):
        slurmauth_fast.create_credential(Keyring.from_key_bytes(KEY), uid=-1, gid=0)


def test_top_level_api():
    for name in ("Keyring", "Verifier", "Credential", "create_credential", "parse_frame",
                 "pack_frame", "verify_rpc", "JWTVerifier", "SlurmAuthError", "HS256Key",
                 "FrameVerifier", "get_unverified_header", "decode_unverified",
                 "CredentialError", "SignatureError", "ExpiredError", "FrameError"):
        assert hasattr(slurmauth_fast, name), name
    token = slurmauth_fast.create_credential(Keyring.from_key_bytes(KEY), uid=1, gid=2)
    assert slurmauth_fast.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    header, claims, notes = slurmauth_fast.decode_unverified(token)
    assert claims["uid"] == 1 and not notes
    with pytest.raises(E.SegmentError):
        slurmauth_fast.get_unverified_header("a.b")


def test_batches_release_their_buffer(ring, slurm):
    with slurm.verify_many([slurmauth_fast.create_credential(ring, uid=5, gid=5)]) as batch:
        assert list(batch.uid) == [5]
    with pytest.raises(E.BadArgumentError, match="released"):
        batch[0]


def test_auth_jwt_claim_errors_carry_the_claim():
    key = HS256Key(JWT_KEY)
    v = JWTVerifier(hs256_key=key)
    with pytest.raises(E.ExpiredError) as e:
        v.verify(create_token(key, ME, caller_uid=0, lifespan=1, now=1000))
    assert e.value.claim == "exp"
    with pytest.raises(E.ClaimsError) as e:
        v.verify(key.sign({"sun": ME, "exp": 2 ** 40}))
    assert e.value.claim == "iat"
