"""Slurm RPCs under one name: frames (:mod:`slurmauth_fast.frame`: parse,
pack, constants) and their verification (:mod:`slurmauth_fast.frame_verifier`:
:func:`verify_rpc`, :class:`FrameVerifier`)."""
from __future__ import annotations

from .frame import *  # noqa: F401,F403
from .frame import __all__ as _frame_all
from .frame_verifier import PLUGINS, FrameVerifier, VerifiedRpc, verify_rpc

__all__ = [*_frame_all, "PLUGINS", "FrameVerifier", "VerifiedRpc", "verify_rpc"]
