"""The compiled C core, shared by the bindings."""
from .._core import ffi, lib

__all__ = ["ffi", "lib"]
