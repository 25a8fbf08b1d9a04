"""The bindings layer: the only Python code that touches the compiled C core.

``_ffi`` loads ``ffi``/``lib`` from ``slurmauth_fast._native``; each other
module here covers one C area (``hs256``: HMAC keys, JWS, base64;
``slurmcred``: auth/slurm keysets, policies, scratch and results; ``frame``:
RPC frames and the fused frame verifier; ``pack``: Slurm's pack format;
``bodyhash``: the message-body hash) and ``status`` maps every C status to
its exception. Modules outside this package import these functions, never
``lib``.
"""
from ._ffi import ffi, lib

__all__ = ["ffi", "lib"]
