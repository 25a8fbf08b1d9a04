"""auth/slurm credentials under one name: :mod:`slurmauth_fast.credential`
(the :class:`Credential`, :func:`create_credential`) and
:mod:`slurmauth_fast.verifier` (:class:`Verifier`, :class:`VerifiedBatch`)."""
from __future__ import annotations

from .credential import (CONTEXTS, DEFAULT_TTL, PROTOCOL_VERSION, RPC_CONTEXTS,
                         SUPPORTED_PROTOCOL_VERSIONS, UINT32_MAX, Credential, create_credential,
                         create_many, short_hostname)
from .keys import SLURM_AUTH_UID_ANY, Keyring
from .verifier import VerifiedBatch, Verifier, verify_credential

__all__ = ["CONTEXTS", "DEFAULT_TTL", "PROTOCOL_VERSION", "RPC_CONTEXTS", "SLURM_AUTH_UID_ANY",
           "SUPPORTED_PROTOCOL_VERSIONS", "UINT32_MAX", "Credential", "Keyring", "VerifiedBatch",
           "Verifier", "create_credential", "create_many", "short_hostname", "verify_credential"]
