"""slurmauth_fast: create and verify Slurm authentication credentials fast,
byte-compatible with Slurm (auth/slurm, auth/jwt, auth/munge, SACK)."""
from __future__ import annotations

from . import errors
from .errors import SlurmAuthError
from .jws import DEFAULT_MAX_TOKEN, HS256Key, VerifiedJWS

__version__ = "0.1.0"

__all__ = ["DEFAULT_MAX_TOKEN", "HS256Key", "SlurmAuthError", "VerifiedJWS", "errors", "__version__"]
