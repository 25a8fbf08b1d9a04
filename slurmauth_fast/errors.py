"""Every exception class, Slurm error number and MUNGE code under one name,
plus the C status table's helpers (for code written against this module).

The classes live in :mod:`slurmauth_fast.exceptions`, the numbers in
:mod:`slurmauth_fast.codes`, the C status -> exception table in
:mod:`slurmauth_fast._bindings.status`.
"""
from __future__ import annotations

from ._bindings.status import error_for_status, raise_for_status
from .codes import *  # noqa: F401,F403
from .exceptions import *  # noqa: F401,F403
from .exceptions import munge_error_class  # noqa: F401

from .codes import __all__ as _codes
from .exceptions import __all__ as _classes

__all__ = [*_classes, *_codes, "error_for_status", "raise_for_status"]
