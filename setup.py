# Metadata lives in pyproject.toml; this file only wires the cffi-compiled C core.
from setuptools import setup

setup(cffi_modules=["slurmauth_fast/_build.py:ffibuilder"])
