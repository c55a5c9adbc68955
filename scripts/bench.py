"""Benchmark: the web tier's Temporal calls, through the whole Django stack, side by side.

Starts its own Temporal dev server, worker and SQLite database, then times real requests:

  status   GET  /v1/customers/{id}/verification   (a workflow query)
  verify   POST /v1/customers/{id}:verify         (a workflow update, wrong codes)

each two ways, interleaved round by round so that machine noise hits both alike:

  shared       the process's one gateway client (what the app does)
  per-request  a fresh connection for every request (the anti-pattern it avoids)

Then it makes MEMORY_CALLS status requests each way, one way after the other, and reads the
process's resident memory and open file descriptors after each.

Targets, checked at the end (exit 1 if one is missed):
  - shared status p95 under 50 ms, and shared verify p95 under 100 ms;
  - shared requests leave the open file descriptors as they were (one connection, reused) and
    grow the process by less than 25 MiB (nothing kept per call).

Connecting per request costs little time on loopback (no TLS, no network round trip); the table
shows by how much. What it costs here is connections and memory, which the second part shows.

Run with `make bench`. Takes about a minute.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUNDS = 150
CUSTOMERS_FOR_VERIFY = 60  # each takes 2 wrong codes before the third would end it
TARGET_STATUS_P95_MS = 50.0
TARGET_VERIFY_P95_MS = 100.0
TARGET_GROWTH_MIB = 25.0
TARGET_FD_GROWTH = 4
MEMORY_CALLS = 300


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="coffeeshop-bench-"))
    from tests.temporal_server import TemporalDevServer

    server = TemporalDevServer(workdir / "temporal.db")
    server.start()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "coffeeshop.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-only",
            "SECURE_SSL_REDIRECT": "false",  # the test client speaks plain HTTP
            "ALLOWED_HOSTS": "testserver",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_TASK_QUEUE": "bench",
            "SMS_BACKEND": "locmem",
            "VERIFICATION_DEMO_CODE": "",
            "LOG_LEVEL": "WARNING",
            # The abuse limits would stop a benchmark's burst from one address.
            "THROTTLE_SIGNUP_RATE": "100000/hour",
            "THROTTLE_VERIFY_RATE": "100000/hour",
            "THROTTLE_RESEND_RATE": "100000/hour",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    worker = _BackgroundWorker("bench")
    try:
        worker.start()
        return _run()
    finally:
        worker.stop()
        server.stop()


def _run() -> int:
    from django.test import Client

    from coffeeshop.temporal.client import gateway
    from customers.services import customer_sign_up

    client = Client()
    status_customer = _sign_up(customer_sign_up, 0)
    verify_customers = [_sign_up(customer_sign_up, n + 1) for n in range(CUSTOMERS_FOR_VERIFY)]
    verify_targets = [c for c in verify_customers for _ in range(2)]

    def status(customer) -> float:
        return _timed(lambda: client.get(f"/v1/customers/{customer.id}/verification"))

    def verify(customer) -> float:
        return _timed(
            lambda: client.post(
                f"/v1/customers/{customer.id}:verify",
                {"verification_code": "0000"},
                content_type="application/json",
            )
        )

    def per_request(measure):
        def run(customer) -> float:
            gateway.close()  # forget the client: the next call connects afresh
            return measure(customer)

        return run

    for _ in range(10):  # warm up both paths
        status(status_customer)
        per_request(status)(status_customer)

    results: dict[str, list[float]] = {
        name: [] for name in ("status", "status_pr", "verify", "verify_pr")
    }
    for _ in range(ROUNDS):
        results["status"].append(status(status_customer))
        results["status_pr"].append(per_request(status)(status_customer))
    half = len(verify_targets) // 2
    for i in range(half):
        results["verify"].append(verify(verify_targets[i]))
        results["verify_pr"].append(per_request(verify)(verify_targets[half + i]))

    rows = [
        ("status (query)", "shared", results["status"]),
        ("status (query)", "per-request", results["status_pr"]),
        ("verify (update)", "shared", results["verify"]),
        ("verify (update)", "per-request", results["verify_pr"]),
    ]
    print(f"\n{'call':<16} {'client':<12} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for call, mode, values in rows:
        print(
            f"{call:<16} {mode:<12} {len(values):>4} {_p(values, 50):>8.1f} "
            f"{_p(values, 95):>8.1f} {max(values):>8.1f}"
        )

    footprint = {"start": _footprint()}
    for _ in range(MEMORY_CALLS):
        status(status_customer)
    footprint["shared"] = _footprint()
    for _ in range(MEMORY_CALLS):
        per_request(status)(status_customer)
    footprint["per-request"] = _footprint()
    print(f"\n{'after':<22} {'RSS MiB':>8} {'open fds':>9}")
    for name, (rss, fds) in footprint.items():
        label = name if name == "start" else f"{MEMORY_CALLS} {name} calls"
        print(f"{label:<22} {rss:>8.1f} {fds:>9}")

    shared_growth = footprint["shared"][0] - footprint["start"][0]
    shared_fds = footprint["shared"][1] - footprint["start"][1]
    checks = [
        (
            "status p95 (shared)",
            _p(results["status"], 95) < TARGET_STATUS_P95_MS,
            f"{_p(results['status'], 95):.1f} ms < {TARGET_STATUS_P95_MS:.0f}",
        ),
        (
            "verify p95 (shared)",
            _p(results["verify"], 95) < TARGET_VERIFY_P95_MS,
            f"{_p(results['verify'], 95):.1f} ms < {TARGET_VERIFY_P95_MS:.0f}",
        ),
        (
            "memory growth (shared)",
            shared_growth < TARGET_GROWTH_MIB,
            f"{shared_growth:.1f} MiB < {TARGET_GROWTH_MIB:.0f}",
        ),
        (
            "open fds (shared)",
            shared_fds <= TARGET_FD_GROWTH,
            f"{shared_fds:+d} <= {TARGET_FD_GROWTH}",
        ),
    ]
    print()
    for name, ok, detail in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


def _sign_up(customer_sign_up, n: int):
    customer, _ = customer_sign_up(
        first_name="Bench",
        last_name=f"Customer {n}",
        email=f"bench{n}@example.com",
        phone_number=f"+4477009{n:05d}",
        request_id=str(uuid.uuid4()),
    )
    return customer


def _timed(request) -> float:
    started = time.perf_counter()
    response = request()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"bench request failed: {response.status_code} {response.content!r}")
    return elapsed


def _p(values: list[float], percentile: int) -> float:
    if percentile == 50:
        return statistics.median(values)
    return statistics.quantiles(values, n=100)[percentile - 1]


def _footprint() -> tuple[float, int]:
    """Resident memory now (MiB) and the number of open file descriptors."""
    status = Path("/proc/self/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return rss_kib / 1024, len(os.listdir("/proc/self/fd"))


class _BackgroundWorker:
    """The real worker, in this process, on its own thread and event loop."""

    def __init__(self, task_queue: str) -> None:
        self.task_queue = task_queue
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._worker = None
        self._task = None

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)

    def stop(self) -> None:
        if self._worker is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _start(self) -> None:
        from coffeeshop.temporal.client import temporal_connect
        from verification.worker import ACTIVITY_THREADS, worker_build

        client = await temporal_connect()
        self._worker = worker_build(
            client=client,
            task_queue=self.task_queue,
            executor=ThreadPoolExecutor(ACTIVITY_THREADS),
        )
        self._task = asyncio.create_task(self._worker.run())

    async def _stop(self) -> None:
        await self._worker.shutdown()
        await self._task


if __name__ == "__main__":
    sys.exit(main())
