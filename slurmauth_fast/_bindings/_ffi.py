from .._core import ffi, lib

__all__ = ["ffi", "lib"]
