"""`make chaos` in small, on every CI run: 40 customers through one fault of each kind.

The run stops the PostgreSQL cluster under the test database for a few seconds, so it needs a
cluster that Debian's pg_ctlcluster manages, and root (CI runs the suite so); elsewhere it is
skipped. It uses no database fixture: `scripts/chaos.py` makes a database of its own on the same
cluster, and this process's connections are closed before and after, so the tests that come next
connect afresh to the restarted cluster.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, connections

from tests.outages import PostgresCluster

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The budget is 3 minutes; a run takes about a minute on the 2-core machine.
CHAOS_TIMEOUT = 170
CLEANUP_TIMEOUT = 60  # for the script to stop its processes and start PostgreSQL again
LOCAL_HOSTS = ("", "127.0.0.1", "localhost", "::1")


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """The cluster under the test database, accepting connections again however the test ends."""
    if connection.vendor != "postgresql":
        pytest.skip("make chaos stops PostgreSQL for real; set DATABASE_URL to run it.")
    settings = connection.settings_dict
    if settings["HOST"] not in LOCAL_HOSTS:
        pytest.skip("The test database is on another machine; make chaos stops a local one.")
    if os.geteuid() != 0:
        pytest.skip("Stopping PostgreSQL needs root (pg_ctlcluster).")
    found = PostgresCluster.serving(int(settings["PORT"] or 5432))
    if found is None:
        pytest.skip("No pg_ctlcluster-managed cluster serves the test database here.")
    connections.close_all()
    yield found
    if not found.accepting():
        found.start()
    connections.close_all()  # any connection opened before the run died with the cluster


def chaos_database_url() -> str:
    """A database of the chaos run's own, beside the test database, with the same role."""
    settings = connection.settings_dict
    credentials = quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host = settings["HOST"] or "127.0.0.1"
    return f"postgres://{credentials}@{host}:{settings['PORT'] or 5432}/{settings['NAME']}_chaos"


@pytest.mark.timeout(CHAOS_TIMEOUT + CLEANUP_TIMEOUT + 30)
def test_40_customers_through_one_fault_of_each_kind_keep_every_invariant(cluster):
    command = [
        sys.executable,
        "scripts/chaos.py",
        "--customers",
        "40",
        "--faults-per-kind",
        "1",
        "--database-url",
        chaos_database_url(),
    ]
    chaos = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = chaos.communicate(timeout=CHAOS_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets it stop what it started and start PostgreSQL again.
        chaos.send_signal(signal.SIGTERM)
        output, _ = chaos.communicate(timeout=CLEANUP_TIMEOUT)
        pytest.fail(f"make chaos took more than {CHAOS_TIMEOUT} s:\n{output[-8000:]}")

    assert chaos.returncode == 0, output[-8000:]
    assert "invariants: 6 of 6 passed" in output, output[-8000:]
