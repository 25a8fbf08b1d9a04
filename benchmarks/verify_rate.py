#!/usr/bin/env python3
"""The main job: the controller-side verification rate, slurmauth_fast against
every peer (PyJWT, joserfc, a minimal hmac+json verifier, libjwt, munged) and
the OpenSSL HMAC floor, on the same token and frame in one run; then the
thread run and the socket run. Prints a table of rates and ratios and writes
verify_rate.json (and verify_rate.png when matplotlib is installed).

All the work is in :mod:`slurmauth_fast.verify_rate` (``--help`` for options);
``slurmauth-fast bench`` runs the same code with the same options.
"""
import sys

from slurmauth_fast.verify_rate import main

if __name__ == "__main__":
    sys.exit(main())
