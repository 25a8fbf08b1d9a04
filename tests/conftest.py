import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

VECTORS = Path(__file__).parent / "vectors"

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def load_vectors(name: str):
    return json.loads((VECTORS / name).read_text())


@pytest.fixture
def vectors():
    return load_vectors


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_slurm: runs real Slurm 26.05 daemons and clients (tools/build-slurm.sh); "
                   "skipped where Slurm is not built, unless SLURMAUTH_REQUIRE_SLURM=1")
    config.addinivalue_line(
        "markers", "wheel: installs the binary wheel ($SLURMAUTH_WHEEL, tools/build-wheel.sh) in a "
                   "fresh venv; skipped without one, unless SLURMAUTH_REQUIRE_WHEEL=1")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed real_slurm test gets the logs of the Slurm daemons it used in its report,
    and their directories are kept for a look afterwards."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and item.get_closest_marker("real_slurm") is not None:
        from real_slurm import ACTIVE

        for daemon in list(ACTIVE):
            daemon.keep = True
            report.sections.append((f"slurm logs: {daemon.dir}", daemon.logs()))
