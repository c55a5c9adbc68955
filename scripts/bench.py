"""`make bench`: the app against the raw `temporalio` SDK, on the same dev server, in one run.

It starts everything itself in a temporary directory: a file-backed Temporal dev server with
SQLite in WAL mode, a migrated SQLite database, the worker (`manage.py run_temporal_worker`) and
gunicorn as the Dockerfile runs it (2 workers, 4 threads, no access log). The bench process
drives the app over keep-alive HTTP, one connection per thread, and drives the same workflows
itself with a raw `temporalio` client on the same server and task queue: Update-with-Start with
the app's own workflow input and options, `execute_update` for a code, `query` for the status.
Raw-side customers are inserted untimed; both sides read the codes the worker texts from a file.

Measured with app and raw interleaved round by round, taking turns at going first:

  verify      POST /v1/customers/{id}:verify        vs  execute_update           p50, p95
  status      GET /v1/customers/{id}/verification   vs  query                    p50, p95
  signup      POST /v1/customers, to code sent      vs  Update-with-Start        p50, p95
  throughput  full flows (signup, 2 wrong codes, the right code) at c=16 and c=32: flows/s

then the happy path's history event count, gunicorn's worker RSS at the start and after at
least 500 app flows, and absolute flows/s at c=16 on a second dev server without WAL.

Targets (exit 1 if one is missed): verify p50 <= 1.15x raw; status p50 <= 1.2x raw; signup p50
<= 1.15x raw; throughput >= 0.95x raw at c=16 and c=32; happy path <= 16 history events;
gunicorn worker RSS <= 120 MiB after 500 flows.

  make bench                                   the full run: about 3.5 minutes on 2 cores
  make bench BENCH_ARGS=--smoke                a few samples and flows, no targets
  make bench BENCH_ARGS="--gunicorn-args='--threads 8'"        gunicorn otherwise configured
  make bench BENCH_ARGS="--compare '{python} -m granian --interface wsgi --port {port} \\
      coffeeshop.wsgi:application'"           another server side by side, as a third side
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import secrets
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

from bench_stack import (
    INCORRECT,
    RAW_CALL_TIMEOUT,
    SUCCESS,
    WRONG_CODES_PER_FLOW,
    AppClient,
    BenchError,
    CpuSample,
    RawLoop,
    SmsInbox,
    Stack,
    cpu_sample,
    expect_result,
    gunicorn_command,
    join,
    migrate,
    rss_mib,
    wrong_code,
)

from tests.temporal_server import temporal_binary

TARGET_VERIFY_P50 = 1.15
TARGET_STATUS_P50 = 1.2
TARGET_SIGNUP_P50 = 1.15
TARGET_THROUGHPUT = 0.95
TARGET_HISTORY_EVENTS = 16
TARGET_RSS_MIB = 120.0
CONCURRENCIES = (16, 32)
WAL_CONCURRENCY = 16
WARM_UP_SECONDS = 2.0
# A raw round's customers are inserted before it starts: this many flows/s until one is seen.
RAW_RATE_GUESS = 100.0
APP, ALT, RAW = "app", "alt", "raw"
LATENCIES = (
    ("verify", "verify", TARGET_VERIFY_P50),
    ("status", "status", TARGET_STATUS_P50),
    ("signup", "signup to code sent", TARGET_SIGNUP_P50),
)

Pool = list[tuple[str, str]]  # (customer id, the right code) of open runs


@dataclass(frozen=True)
class Plan:
    """How many samples and flows each part takes."""

    status_rounds: int = 300
    verify_rounds: int = 300
    signup_rounds: int = 150
    warmup_rounds: int = 10
    pool: int = 20  # open runs that the status and verify samples share
    throughput_rounds: int = 4  # per concurrency; each side runs once per round
    throughput_seconds: float = 6.0
    memory_flows: int = 500
    wal_rounds: int = 2
    judged: bool = True


SMOKE = Plan(
    status_rounds=5,
    verify_rounds=5,
    signup_rounds=3,
    warmup_rounds=2,
    pool=2,
    throughput_rounds=1,
    throughput_seconds=1.0,
    memory_flows=0,
    wal_rounds=1,
    judged=False,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few samples, no targets")
    parser.add_argument("--seconds", type=float, help="length of one throughput round")
    parser.add_argument("--rounds", type=int, help="throughput rounds per concurrency")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn arguments")
    parser.add_argument(
        "--compare",
        metavar="COMMAND",
        help="also serve the app with COMMAND ({python}, {port} filled in), as side 'alt'",
    )
    parser.add_argument("--no-wal-check", action="store_true", help="skip the no-WAL server")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else Plan()
    if args.seconds is not None:
        plan = replace(plan, throughput_seconds=args.seconds)
    if args.rounds is not None:
        plan = replace(plan, throughput_rounds=args.rounds)
    if args.no_wal_check:
        plan = replace(plan, wal_rounds=0)
    webs = {APP: gunicorn_command(shlex.split(args.gunicorn_args))}
    if args.compare:
        webs[ALT] = shlex.split(args.compare)

    # SIGTERM (or a closed terminal) unwinds like Ctrl-C, through the cleanup below.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="coffeeshop-bench-"))
    started = time.monotonic()
    bench = Bench(plan, workdir, webs=webs)
    try:
        code = bench.run()
    except BenchError as error:
        print(f"\nbench failed: {error}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("\nbench interrupted", file=sys.stderr)
        code = 130
    finally:
        bench.close()
        if args.keep or code == 2:
            print(f"logs and databases kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"bench took {time.monotonic() - started:.0f} s")
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@dataclass
class Round:
    """One side's throughput round: flows finished, wall time, and CPU each process used."""

    flows: int
    seconds: float
    cpu: CpuSample


@dataclass
class Rate:
    """A side's throughput rounds at one concurrency."""

    rounds: list[Round] = field(default_factory=list)

    @property
    def flows(self) -> int:
        return sum(r.flows for r in self.rounds)

    @property
    def per_second(self) -> float:
        return self.flows / sum(r.seconds for r in self.rounds)

    def cpu_ms_per_flow(self) -> dict[str, float]:
        flows = max(1, self.flows)
        return {
            part: 1000 * sum(getattr(r.cpu, part) for r in self.rounds) / flows
            for part in ("web", "worker", "server", "bench")
        }


class Budget:
    """Hands out flows until a deadline passes or a count runs out; thread-safe."""

    def __init__(self, *, seconds: float | None = None, count: int | None = None) -> None:
        self.seconds = seconds
        self.count = count
        self._deadline = float("inf")
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        if self.seconds is not None:
            self._deadline = time.monotonic() + self.seconds

    def take(self) -> bool:
        with self._lock:
            if self._stopped or time.monotonic() >= self._deadline:
                return False
            if self.count is not None:
                if self.count <= 0:
                    return False
                self.count -= 1
            return True

    def stop(self) -> None:
        with self._lock:
            self._stopped = True


class Bench:
    """One run: the stacks it started, and everything it measured."""

    def __init__(self, plan: Plan, workdir: Path, *, webs: dict[str, list[str]]) -> None:
        self.plan = plan
        self.workdir = workdir
        self.webs = webs
        self.http_sides = list(webs)
        self.sides = [*self.http_sides, RAW]
        self.secret_key = secrets.token_urlsafe(50)
        self.loop = RawLoop()
        self.stacks: list[Stack] = []
        self.inbox = SmsInbox(workdir / "sms.txt")
        self._phones = itertools.count(1)
        self.flows_served = dict.fromkeys(self.http_sides, 0)  # by the main stack's servers
        self.latency: dict[str, dict[str, list[float]]] = {}
        self.throughput: dict[tuple[str, int], Rate] = {}
        self.wal: dict[tuple[str, str], Rate] = {}
        self.journals: dict[str, str] = {}
        self.history: dict[str, int] = {}
        self.rss_start: dict[str, list[float]] = {}
        self.rss_end: dict[str, list[float]] = {}
        self._raw_rate: dict[int, float] = {}  # best flows/s seen, by concurrency
        self.load_before = os.getloadavg()

    def close(self) -> None:
        for stack in reversed(self.stacks):
            stack.stop()
        self.loop.close()

    def run(self) -> int:
        main = self._stack("wal", wal=True, webs=self.webs)
        migrate(main.env, self.workdir / "migrate.log")
        # The bench process reads the same settings: the workflow input, code hashes, the ORM.
        os.environ.clear()
        os.environ.update(main.env)
        import django

        django.setup()
        import bench_raw

        self.sdk = bench_raw
        self._step(f"starting the stack in {self.workdir}")
        main.start(self.loop)
        self.rss_start = {side: self._rss(main, side) for side in self.http_sides}

        pool = self._open_pool(main)
        self._step("warming up")
        rounds = self.plan.warmup_rounds
        self._latency(rounds, self._status_ops(main, pool))
        self._latency(rounds, self._verify_ops(main, pool))
        self._latency(max(1, rounds // 3), self._signup_ops(main, max(1, rounds // 3)))
        for name, ops in (
            ("status", lambda: self._status_ops(main, pool)),
            ("verify", lambda: self._verify_ops(main, pool)),
            ("signup", lambda: self._signup_ops(main, self.plan.signup_rounds)),
        ):
            self._step(f"latency: {name}")
            self.latency[name] = self._latency(getattr(self.plan, f"{name}_rounds"), ops())
        self._throughput(main)
        self._memory(main)
        self._history(main)
        if self.plan.wal_rounds:
            self._wal_versus_rollback(main)
        main.check_alive()
        return self._report(main)

    def _stack(self, name: str, *, wal: bool, webs: dict[str, list[str]]) -> Stack:
        stack = Stack(name, workdir=self.workdir, secret_key=self.secret_key, wal=wal, webs=webs)
        self.stacks.append(stack)
        return stack

    def _step(self, text: str) -> None:
        print(f"[bench] {text}", flush=True)

    def _rss(self, stack: Stack, side: str) -> list[float]:
        return [rss_mib(pid) for pid in stack.webs[side].worker_pids()]

    # Customers, and each side's operations

    def _phone(self) -> str:
        return f"+447700{next(self._phones):06d}"

    def _insert_customers(self, count: int) -> list[tuple[str, str]]:
        """Customer rows for the raw side, inserted untimed: (id, phone number) each."""
        from customers.models import Customer

        rows = [
            Customer(
                id=uuid.uuid4(),
                first_name="Raw",
                last_name="Bench",
                email="raw@example.com",
                phone_number=self._phone(),
            )
            for _ in range(count)
        ]
        Customer.objects.bulk_create(rows)
        return [(str(row.id), row.phone_number) for row in rows]

    def _open_pool(self, stack: Stack) -> Pool:
        """Open runs, started untimed, for the status and verify samples to share."""
        customers = self._insert_customers(self.plan.pool)

        async def start_all() -> None:
            await asyncio.gather(*(self.sdk.sign_up(stack, cid) for cid, _ in customers))

        self.loop.run(start_all())
        return [(cid, self.inbox.wait(phone)) for cid, phone in customers]

    def _status_ops(self, stack: Stack, pool: Pool) -> dict[str, Callable]:
        def http(side: str) -> Callable[[int], float]:
            client = AppClient(stack.webs[side].port)

            def status(n: int) -> float:
                customer_id, _ = pool[n % len(pool)]
                client.ready()
                began = time.perf_counter()
                data = client.expect(200, "GET", f"/v1/customers/{customer_id}/verification")
                elapsed = time.perf_counter() - began
                if not data["verification"]["live"] or data["verification"]["status"] != "pending":
                    raise BenchError(f"unexpected status: {data}")
                return elapsed

            return status

        async def raw(n: int) -> float:
            customer_id, _ = pool[n % len(pool)]
            began = time.perf_counter()
            status = await self.sdk.status(stack, customer_id)
            elapsed = time.perf_counter() - began
            if status.state != "pending":
                raise BenchError(f"unexpected status: {status}")
            return elapsed

        return {**{side: http(side) for side in stack.webs}, RAW: raw}

    def _verify_ops(self, stack: Stack, pool: Pool) -> dict[str, Callable]:
        def http(side: str) -> Callable[[int], float]:
            client = AppClient(stack.webs[side].port)

            def verify(n: int) -> float:
                customer_id, code = pool[n % len(pool)]
                client.ready()
                began = time.perf_counter()
                result = app_submit(client, customer_id, wrong_code(code))
                elapsed = time.perf_counter() - began
                expect_result(result, INCORRECT)
                return elapsed

            return verify

        async def raw(n: int) -> float:
            customer_id, code = pool[n % len(pool)]
            began = time.perf_counter()
            result = await self.sdk.submit(stack, customer_id, wrong_code(code))
            elapsed = time.perf_counter() - began
            expect_result(result, INCORRECT)
            return elapsed

        return {**{side: http(side) for side in stack.webs}, RAW: raw}

    def _signup_ops(self, stack: Stack, rounds: int) -> dict[str, Callable]:
        raw_customers = self._insert_customers(rounds)

        def http(side: str) -> Callable[[int], float]:
            client = AppClient(stack.webs[side].port)

            def sign_up(n: int) -> float:
                phone = self._phone()
                client.ready()
                began = time.perf_counter()
                app_sign_up(client, phone)
                return time.perf_counter() - began

            return sign_up

        async def raw(n: int) -> float:
            customer_id, _ = raw_customers.pop()
            began = time.perf_counter()
            status = await self.sdk.sign_up(stack, customer_id)
            elapsed = time.perf_counter() - began
            if status.code_expires_at is None:
                raise BenchError(f"Update-with-Start answered before the code was sent: {status}")
            return elapsed

        return {**{side: http(side) for side in stack.webs}, RAW: raw}

    def _latency(self, rounds: int, ops: dict[str, Callable]) -> dict[str, list[float]]:
        """One call per side per round, in milliseconds; the sides take turns at going first."""
        samples: dict[str, list[float]] = {side: [] for side in ops}
        sides = list(ops)
        calls = itertools.count()
        for i in range(rounds):
            for side in _rotated(sides, i):
                n = next(calls)  # each call meets another run of the pool than the one before
                elapsed = self.loop.run(ops[side](n)) if side == RAW else ops[side](n)
                samples[side].append(1000 * elapsed)
        return samples

    # Throughput

    def _throughput(self, stack: Stack) -> None:
        # Connections, caches and every server's workers warm, untimed.
        for side in self.sides:
            self._round(stack, side, CONCURRENCIES[0], Budget(seconds=WARM_UP_SECONDS))
        turn = 0
        for concurrency in CONCURRENCIES:
            for _ in range(self.plan.throughput_rounds):
                for side in _rotated(self.sides, turn):
                    self._step(f"throughput: {side} at c={concurrency}")
                    budget = Budget(seconds=self.plan.throughput_seconds)
                    self.throughput.setdefault((side, concurrency), Rate()).rounds.append(
                        self._round(stack, side, concurrency, budget)
                    )
                turn += 1

    def _round(self, stack: Stack, side: str, concurrency: int, budget: Budget) -> Round:
        if side == RAW:
            return self._raw_round(stack, concurrency, budget)
        return self._http_round(stack, side, concurrency, budget)

    def _http_round(self, stack: Stack, side: str, concurrency: int, budget: Budget) -> Round:
        clients = [AppClient(stack.webs[side].port) for _ in range(concurrency)]
        for client in clients:
            client.ready()
        done = [0] * concurrency
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                while budget.take():
                    app_flow(clients[n], self.inbox, self._phone())
                    done[n] += 1
            except BaseException as error:
                errors.append(error)
                budget.stop()
            finally:
                clients[n].close()

        threads = [
            threading.Thread(target=work, args=(n,), daemon=True) for n in range(concurrency)
        ]
        before = cpu_sample(stack, side)
        began = time.perf_counter()
        budget.start()
        for thread in threads:
            thread.start()
        join(threads)
        elapsed = time.perf_counter() - began
        cpu = cpu_sample(stack, side) - before
        if errors:
            raise BenchError(f"an app flow failed: {errors[0]!r}") from errors[0]
        if stack is self.stacks[0]:
            self.flows_served[side] += sum(done)
        return Round(sum(done), elapsed, cpu)

    def _raw_round(self, stack: Stack, concurrency: int, budget: Budget) -> Round:
        rate = self._raw_rate.get(concurrency, RAW_RATE_GUESS)
        customers = self._insert_customers(int(2 * rate * (budget.seconds or 0)) + concurrency)
        done = [0]

        async def work() -> None:
            while budget.take():
                if not customers:
                    raise BenchError("the raw side ran out of inserted customers")
                customer_id, phone = customers.pop()
                await self.sdk.flow(stack, self.inbox, customer_id, phone)
                done[0] += 1

        async def all_work() -> None:
            tasks = [asyncio.create_task(work()) for _ in range(concurrency)]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                budget.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        before = cpu_sample(stack, RAW)
        began = time.perf_counter()
        budget.start()
        self.loop.run(all_work(), timeout=(budget.seconds or 0) + RAW_CALL_TIMEOUT)
        elapsed = time.perf_counter() - began
        cpu = cpu_sample(stack, RAW) - before
        self._raw_rate[concurrency] = max(self._raw_rate.get(concurrency, 0.0), done[0] / elapsed)
        return Round(done[0], elapsed, cpu)

    # Memory, history, WAL

    def _memory(self, stack: Stack) -> None:
        for side in self.http_sides:
            missing = self.plan.memory_flows - self.flows_served[side]
            if missing > 0:
                self._step(f"memory: {missing} more flows through {side}")
                self._http_round(stack, side, CONCURRENCIES[0], Budget(count=missing))
            self.rss_end[side] = self._rss(stack, side)

    def _history(self, stack: Stack) -> None:
        self._step("history of the happy path")
        client = AppClient(stack.webs[APP].port)
        phone = self._phone()
        customer_id = app_sign_up(client, phone)
        expect_result(app_submit(client, customer_id, self.inbox.wait(phone)), SUCCESS)
        client.close()
        self.history[APP] = self.loop.run(self.sdk.history_length(stack, customer_id))
        [(raw_id, raw_phone)] = self._insert_customers(1)

        async def raw_happy_path() -> int:
            await self.sdk.sign_up(stack, raw_id)
            code = await self.inbox.wait_async(raw_phone)
            expect_result(await self.sdk.submit(stack, raw_id, code), SUCCESS)
            return await self.sdk.history_length(stack, raw_id)

        self.history[RAW] = self.loop.run(raw_happy_path())

    def _wal_versus_rollback(self, main: Stack) -> None:
        self._step("starting a second dev server, without WAL")
        rollback = self._stack("rollback", wal=False, webs={APP: self.webs[APP]})
        rollback.start(self.loop)
        runs = [(name, side) for name in ("wal", "rollback") for side in (RAW, APP)]
        for turn in range(self.plan.wal_rounds):
            for name, side in _rotated(runs, turn * 2):
                stack = main if name == "wal" else rollback
                self._step(f"WAL or not: {side} on the {name} server at c={WAL_CONCURRENCY}")
                budget = Budget(seconds=self.plan.throughput_seconds)
                self.wal.setdefault((name, side), Rate()).rounds.append(
                    self._round(stack, side, WAL_CONCURRENCY, budget)
                )
        self.journals = {"wal": main.journal_mode(), "rollback": rollback.journal_mode()}
        rollback.check_alive()

    # The report

    def _report(self, main: Stack) -> int:
        judged = self.plan.judged
        misses = 0

        def judge(ok: bool) -> str:
            nonlocal misses
            if not judged:
                return "smoke"
            misses += not ok
            return "PASS" if ok else "MISS"

        alt = ALT in self.http_sides
        header = ("measure", "app", *(("alt",) if alt else ()), "raw", "app/raw")
        header += (*(("alt/raw",) if alt else ()), "target", "result")

        def row(measure: str, values: dict[str, str], ratios: dict[str, str], *verdict: str):
            cells = [measure, values.get(APP, "")]
            cells += [values.get(ALT, "")] if alt else []
            cells += [values.get(RAW, ""), ratios.get(APP, "")]
            cells += [ratios.get(ALT, "")] if alt else []
            return (*cells, *(verdict or ("", "")))

        rows = []
        for name, label, target in LATENCIES:
            samples = self.latency[name]
            for pct in (50, 95):
                value = {side: percentile(samples[side], pct) for side in self.sides}
                ratios = {side: value[side] / value[RAW] for side in self.http_sides}
                verdict = (f"<= {target:.2f}x", judge(ratios[APP] <= target)) if pct == 50 else ()
                rows.append(
                    row(
                        f"{label} p{pct} ms (n={len(samples[RAW])})",
                        {side: f"{v:.2f}" for side, v in value.items()},
                        {side: f"{r:.2f}x" for side, r in ratios.items()},
                        *verdict,
                    )
                )
        for concurrency in CONCURRENCIES:
            rate = {side: self.throughput[(side, concurrency)].per_second for side in self.sides}
            ratios = {side: rate[side] / rate[RAW] for side in self.http_sides}
            rows.append(
                row(
                    f"throughput c={concurrency} flows/s",
                    {side: f"{v:.1f}" for side, v in rate.items()},
                    {side: f"{r:.2f}x" for side, r in ratios.items()},
                    f">= {TARGET_THROUGHPUT:.2f}x",
                    judge(ratios[APP] >= TARGET_THROUGHPUT),
                )
            )
        rows.append(
            row(
                "happy-path history events",
                {side: str(count) for side, count in self.history.items()},
                {},
                f"<= {TARGET_HISTORY_EVENTS}",
                judge(self.history[APP] <= TARGET_HISTORY_EVENTS),
            )
        )
        workers = "web worker" if alt else "gunicorn worker"
        rows.append(
            row(
                f"{workers} RSS MiB, max at start",
                {side: f"{max(rss):.1f}" for side, rss in self.rss_start.items()},
                {},
            )
        )
        served = self.flows_served[APP]
        rows.append(
            row(
                f"{workers} RSS MiB, max after {served} flows",
                {side: f"{max(rss):.1f}" for side, rss in self.rss_end.items()},
                {},
                f"<= {TARGET_RSS_MIB:.0f}",
                judge(
                    served >= self.plan.memory_flows and max(self.rss_end[APP]) <= TARGET_RSS_MIB
                ),
            )
        )
        for name, label in (("wal", "WAL"), ("rollback", "no WAL")):
            if (name, RAW) in self.wal:
                rate = {side: self.wal[(name, side)].per_second for side in (APP, RAW)}
                rows.append(
                    row(
                        f"c={WAL_CONCURRENCY} flows/s, dev server {label}",
                        {side: f"{v:.1f}" for side, v in rate.items()},
                        {APP: f"{rate[APP] / rate[RAW]:.2f}x"},
                    )
                )
        _print_environment(main, self.load_before)
        _print_table(header, rows)
        if self.journals:
            print(
                "journal modes, as the dev servers' database files record them: "
                + ", ".join(f"{name} server {mode}" for name, mode in self.journals.items())
            )
        self._print_cpu()
        if not judged:
            print("\nSmoke run: everything worked. Targets are judged only on a full run.")
            return 0
        print(f"\n{misses} target(s) missed." if misses else "\nEvery target met.")
        return 1 if misses else 0

    def _print_cpu(self) -> None:
        rows = []
        for side in self.sides:
            for concurrency in CONCURRENCIES:
                rate = self.throughput[(side, concurrency)]
                cpu = rate.cpu_ms_per_flow()
                rows.append(
                    (
                        f"{side} c={concurrency}",
                        str(rate.flows),
                        " ".join(f"{r.flows / r.seconds:.1f}" for r in rate.rounds),
                        *(f"{cpu[part]:.1f}" for part in ("web", "worker", "server", "bench")),
                        f"{sum(cpu.values()):.1f}",
                    )
                )
        print("\nCPU ms per full flow, by process, over the throughput rounds:")
        _print_table(
            ("side", "flows", "flows/s by round", "web", "worker", "dev server", "bench", "total"),
            rows,
        )


# The app's side: HTTP to its web server


def app_sign_up(client: AppClient, phone: str) -> str:
    """Sign a new customer up; their id, once the answer says their code is sent."""
    data = client.expect(
        201,
        "POST",
        "/v1/customers",
        {
            "customer": {
                "first_name": "App",
                "last_name": "Bench",
                "email": "app@example.com",
                "phone_number": phone,
            },
            "request_id": str(uuid.uuid4()),
        },
    )
    verification = data["verification"]
    if verification["status"] != "pending" or verification["code_expires_at"] is None:
        raise BenchError(f"signup answered before the code was sent: {data}")
    return data["customer"]["id"]


def app_submit(client: AppClient, customer_id: str, code: str) -> str:
    """Submit one code; the result's name."""
    data = client.expect(
        200, "POST", f"/v1/customers/{customer_id}:verify", {"verification_code": code}
    )
    return data["result"]


def app_flow(client: AppClient, inbox: SmsInbox, phone: str) -> None:
    """Sign up, two wrong codes, then the right one texted to `phone`."""
    customer_id = app_sign_up(client, phone)
    code = inbox.wait(phone)
    for _ in range(WRONG_CODES_PER_FLOW):
        expect_result(app_submit(client, customer_id, wrong_code(code)), INCORRECT)
    expect_result(app_submit(client, customer_id, code), SUCCESS)


# Helpers


def _rotated(items: list, turn: int) -> list:
    """`items` with the first `turn` (modulo its length) moved to the end."""
    shift = turn % len(items)
    return items[shift:] + items[:shift]


def percentile(values: list[float], pct: int) -> float:
    if pct == 50:
        return statistics.median(values)
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        print("  ".join(cells).rstrip())


def _print_environment(stack: Stack, load_before: tuple[float, ...]) -> None:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    temporal_cli = subprocess.run(  # noqa: S603 - the dev server's own binary
        [str(temporal_binary()), "--version"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("Django", "djangorestframework", "temporalio", "gunicorn")
    )
    load_after = os.getloadavg()
    print(
        f"\nmachine: {os.cpu_count()} CPUs, {model}; "
        f"1-minute load {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end"
    )
    print(
        f"python {platform.python_version()}, {versions}, SQLite {sqlite3.sqlite_version}; "
        f"{temporal_cli}"
    )
    for side, web in stack.webs.items():
        print(f"{side}: {shlex.join(web.command)}")
    print()


if __name__ == "__main__":
    sys.exit(main())
