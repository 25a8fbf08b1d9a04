"""``python -m slurmauth_fast.cli``: the ``slurmauth-fast`` command."""
import sys

from . import main

sys.exit(main())
