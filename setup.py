# Metadata lives in pyproject.toml; this file only wires the cffi-compiled C core.
# The extension is built against the limited API of CPython 3.9 (see _build.py),
# so the wheel is tagged cp39-abi3: one wheel per platform for every Python >= 3.9.
from setuptools import setup

setup(
    cffi_modules=["slurmauth_fast/_build.py:ffibuilder"],
    options={"bdist_wheel": {"py_limited_api": "cp39"}},
)
