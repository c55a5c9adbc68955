"""`make chaos`: customers verify their phones over HTTP while processes crash and outages come.

It starts the production shape itself: PostgreSQL (a database of its own, dropped and created on
the cluster `--database-url` names), gunicorn with several workers, two `run_temporal_worker`
processes, and a file-backed Temporal dev server. The SMS backend fails about 20 % of its calls
with an exception (`tests.sms_backends.FlakyFileSmsBackend`); the customers read their codes
from the file it writes.

Each simulated customer takes one path, chosen at random: the right code first; one or two wrong
codes, then the right one; three wrong codes; waiting until the code expires, then the fresh one;
a resend, then the new code; a double submit with one Idempotency-Key; a signup sent twice with
one request_id. Each behaves as a careful client: on 503, a dropped connection or a timeout it
sends the same request again, with the same Idempotency-Key or request_id, after a backoff.

While they run, a chaos loop injects each kind of fault `--faults-per-kind` times, at random
moments: SIGKILL a worker and start it again; SIGKILL a gunicorn worker (its master starts
another); SIGKILL the Temporal server and restart it on the same database file; stop PostgreSQL
(`pg_ctlcluster ... stop -m immediate`) for a few seconds and start it again.

Once everything is back it checks, for every customer: 1 Temporal, the Verification row and
Customer.phone_verified agree; 2 attempts are counted exactly; 3 every answer holds; 4 no
duplicates; 5 no 5xx but 503, and 503s only during an outage and its recovery; 6 every flow
finishes in bounded time. It prints what it injected and what it checked; exit 1 if an invariant
fails, 2 if the run could not be judged.

  make chaos                                                  200 customers, 2 faults of each kind,
                                                              about 2 minutes
  make chaos CHAOS_ARGS="--customers 40 --faults-per-kind 1"  what CI runs (tests/test_chaos.py)
  make chaos CHAOS_ARGS="--seed 7 --keep"                     the same paths again, logs kept

The logs, and every request, fault and customer as JSON lines, stay in the run's directory when
an invariant fails or with --keep.

Needs root (pg_ctlcluster) and a Debian PostgreSQL cluster on this machine; the role in
--database-url needs CREATEDB, and the database's name must contain "chaos".
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench_stack import (
    WORKER_READY,
    AppClient,
    BenchError,
    Process,
    RawLoop,
    SmsInbox,
    Web,
    app_environment,
    gunicorn_command,
    join,
    migrate,
    wait_until,
)

from tests.temporal_server import TemporalDevServer

DEFAULT_DATABASE_URL = "postgres://coffeeshop:coffeeshop@127.0.0.1:5432/coffeeshop_chaos"

# The app's settings for the run, each chosen for it:
MAX_ATTEMPTS = 3  # production's: three wrong codes end a run
# The expiry path waits this out, so it sets the length of the run; yet a code outlives the
# longest stall a normal path meets (Postgres away 5 s, a Temporal restart, a 10 s request bound
# and a 4 s backoff), so unplanned expiries stay rare. Clients cope with one anywhere.
CODE_TTL = 30
CODE_LENGTH = 6  # production's
RESEND_COOLDOWN = 3  # the resend path waits it out
MAX_SENDS = 5  # production's: a path needs 2 sends at most, an unplanned expiry one more
RECONCILE_INTERVAL = 5  # the reconciler would heal a pending row of a closed run within seconds
REQUEST_TIMEOUT = 10  # production's TEMPORAL_REQUEST_TIMEOUT: the bound on a request's wait
SMS_FAILURE_RATE = 0.2
CHAOS_SETTINGS = {
    "VERIFICATION_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "VERIFICATION_CODE_TTL": str(CODE_TTL),
    "VERIFICATION_RESEND_COOLDOWN": str(RESEND_COOLDOWN),
    "VERIFICATION_MAX_SENDS": str(MAX_SENDS),
    "VERIFICATION_CODE_LENGTH": str(CODE_LENGTH),
    "VERIFICATION_RECONCILE_INTERVAL": str(RECONCILE_INTERVAL),
    "TEMPORAL_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
    "VERIFICATION_CHANNELS": "sms",  # the ladder's other rungs are not under test here
    "SMS_BACKEND": "tests.sms_backends.FlakyFileSmsBackend",
    "SMS_FAILURE_RATE": str(SMS_FAILURE_RATE),
    # The logs are the evidence when an invariant fails: keep the app's INFO lines.
    "LOG_LEVEL": "INFO",
}
GUNICORN_WORKERS = 4  # production's compose file: two web replicas of 2 workers, 4 threads each
GUNICORN_THREADS = 4
WORKERS = 2

# The faults. Each kind is injected `--faults-per-kind` times, in random order, one at a time,
# each at a random moment of its own slot of the fault window, so they spread over the run.
FAULT_KINDS = ("worker", "gunicorn", "temporal", "postgres")
# The window is the ramp, while customers still arrive, so every fault meets requests in flight;
# the ramp is long enough to give each fault a slot of its own.
FAULT_WINDOW_START = 3.0  # seconds into the run: customers are signing up by then
SECONDS_PER_FAULT = 8.0
SECONDS_PER_CUSTOMER = 0.3
WORKER_DOWN = (0.5, 2.0)  # seconds a killed worker stays dead; the other one carries on
TEMPORAL_DOWN = (1.0, 3.0)
POSTGRES_DOWN = (2.0, 5.0)
GUNICORN_RESPAWN_TIMEOUT = 30.0
CHAOS_STOP_TIMEOUT = 90.0  # the longest a fault in progress takes to undo

# The bounds the invariants hold the app to.
# A request that met an outage may wait the full request bound once more after it ends, and a
# recorded outcome that Postgres refused is retried by the workflow with backoff (1, 2, 4 s...).
RECOVERY_BOUND = REQUEST_TIMEOUT + 10.0
ATTRIBUTION_SLACK = 1.0  # a try that began this soon after a fault ended still met it
# After the last fault, a customer may still be waiting out a code (the expiry path).
FINISH_BOUND = CODE_TTL + 45.0
GIVE_UP_AFTER = FINISH_BOUND + 30.0  # past the last fault: a client stops trying, the flow fails

# The clients.
THINK = (0.3, 1.5)  # seconds between a customer's steps
BACKOFF_FIRST, BACKOFF_CAP = 0.25, 4.0
HTTP_TIMEOUT = 30.0
CODE_POLL = 0.2
MARGIN = 0.5  # past a deadline the workflow reported (a code's expiry, the cooldown's end)

SUCCESS = "VERIFICATION_RESULT_SUCCESS"
INCORRECT = "VERIFICATION_RESULT_INCORRECT_CODE"
EXPIRED = "VERIFICATION_RESULT_CODE_EXPIRED"
MAX_REACHED = "VERIFICATION_RESULT_MAX_ATTEMPTS_REACHED"

# Each path is a plan of steps; `Customer` has a method for each step.
PATHS: dict[str, Callable[[random.Random], list[str]]] = {
    "right code first": lambda rng: ["right"],
    "1-2 wrong, then right": lambda rng: ["wrong"] * rng.choice((1, 2)) + ["right"],
    "three wrong codes": lambda rng: ["wrong"] * 3,
    "expiry, then fresh code": lambda rng: ["expire", "right"],
    "resend, then new code": lambda rng: ["resend", "right"],
    "double submit, one key": lambda rng: ["double_wrong", "double_right"],
    "signup sent twice": lambda rng: ["right"],
}
DOUBLE_SIGNUP = "signup sent twice"

INVARIANTS = {
    1: "consistent final state",
    2: "exact attempt accounting",
    3: "every answer holds",
    4: "no duplicates",
    5: "only 503 fails",
    6: "every flow finishes",
}


class GaveUp(Exception):
    """The client stopped trying: the run is ending, or the app never answered in time."""


class Unexpected(Exception):
    """The app gave an answer this path has no sensible next step for."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=200, help="simulated customers (200)")
    parser.add_argument(
        "--faults-per-kind", type=int, default=2, help="times each kind of fault is injected (2)"
    )
    parser.add_argument("--seed", type=int, help="seed of every random choice (random)")
    parser.add_argument(
        "--ramp",
        type=float,
        help=f"seconds over which customers start ({SECONDS_PER_CUSTOMER} s a customer, "
        f"{SECONDS_PER_FAULT:.0f} s a fault, whichever is longer)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("CHAOS_DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"the database to drop, create and use; its cluster is stopped and started "
        f"({DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--gunicorn-workers", type=int, default=GUNICORN_WORKERS, help="gunicorn worker processes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs and the database")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    ramp = args.ramp or max(
        SECONDS_PER_CUSTOMER * args.customers,
        SECONDS_PER_FAULT * args.faults_per_kind * len(FAULT_KINDS),
    )

    # SIGTERM (or a closed terminal) unwinds like Ctrl-C, through the cleanup below.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="coffeeshop-chaos-"))
    run = ChaosRun(
        customers=args.customers,
        faults_per_kind=args.faults_per_kind,
        seed=seed,
        ramp=ramp,
        database_url=args.database_url,
        gunicorn_workers=args.gunicorn_workers,
        workdir=workdir,
    )
    code = 2
    try:
        code = run.run()
    except BenchError as error:
        print(f"\nchaos failed: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nchaos interrupted", file=sys.stderr)
        code = 130
    finally:
        run.close(keep_database=args.keep)
        if args.keep or code != 0:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Clock:
    """Seconds since the run's customers began."""

    def __init__(self) -> None:
        self.zero = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.zero


@dataclass
class Call:
    """One HTTP request as a client saw it; `status` None when no answer came."""

    customer: int
    action: str
    request: int  # the same for every retry of one request
    attempt: int  # 1 for the first try
    key: str  # the Idempotency-Key or request_id sent, if any
    started: float
    ended: float
    status: int | None
    error: str = ""  # the exception, or the answer's error.code
    body: str = ""  # kept for answers that need explaining


@dataclass
class Fault:
    """One fault injected: what, and when it began and ended (seconds into the run)."""

    kind: str
    target: str
    injected: float
    restored: float | None = None  # None while it lasts, or if undoing it failed


class Ledger:
    """Every request every client made; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self.calls: list[Call] = []

    def new_request(self) -> int:
        with self._lock:
            self._requests += 1
            return self._requests

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def requests(self) -> dict[int, list[Call]]:
        """Every request's tries, in order."""
        tries: dict[int, list[Call]] = defaultdict(list)
        for call in self.calls:
            tries[call.request].append(call)
        return tries


# The customers


class Customer:
    """One simulated customer on one path, driving the API as a careful client would."""

    def __init__(self, run: ChaosRun, index: int, path: str, rng: random.Random) -> None:
        self.run = run
        self.index = index
        self.path = path
        self.rng = rng
        self.plan = PATHS[path](rng)
        self.start_at = rng.uniform(0, run.ramp)
        self.phone = f"+4477009{index:05d}"
        self.request_id = str(uuid.uuid4())
        self.http = AppClient(run.web.port, timeout=HTTP_TIMEOUT)
        self.customer_id: str | None = None
        self.signups: list[tuple[int, str]] = []  # (status, customer id) of each signup answer
        self.counted: list[str] = []  # keys of the codes the run counted, in order
        self.remaining_seen: list[int] = []
        self.resend_keys: set[str] = set()
        self.expired_answers = 0
        self.answered: str | None = None  # SUCCESS or MAX_ATTEMPTS_REACHED, once told
        self.violations: list[tuple[int, str]] = []  # (invariant, what the client saw)
        self.notes: list[str] = []  # what went otherwise than planned, and why
        self.gave_up = ""
        self.finished_at: float | None = None
        self._codes_before_submit = 0

    # The flow

    def __call__(self) -> None:
        try:
            self._sleep(self.start_at - self.run.clock.now())
            self._sign_up()
            self._await_codes(1)
            for step in self.plan:
                if self.answered:
                    break
                self._think()
                getattr(self, f"_step_{step}")()
            if not self.answered:
                raise Unexpected(f"the plan {self.plan} ended with the run still pending")
            self._read_back()
        except GaveUp as reason:
            self.gave_up = str(reason)
        except Unexpected as reason:
            self.gave_up = f"unexpected: {reason}"
        except Exception:  # a bug in this script: the run cannot be judged without it
            self.gave_up = f"client crashed: {traceback.format_exc()}"
        finally:
            self.finished_at = self.run.clock.now()
            self.http.close()

    def _sign_up(self) -> None:
        body = {
            "customer": {
                "first_name": "Chaos",
                "last_name": f"Customer {self.index}",
                "email": f"chaos{self.index}@example.com",
                "phone_number": self.phone,
            },
            "request_id": self.request_id,
        }
        copies = 2 if self.path == DOUBLE_SIGNUP else 1
        answers = self._concurrently(copies, lambda to: self._call("signup", to, body=body))
        for status, data in answers:
            if status not in (200, 201):
                raise Unexpected(f"signup answered {status}: {data}")
            self.signups.append((status, data["customer"]["id"]))
            verification = data.get("verification") or {}
            if verification.get("status") != "pending":
                self.notes.append(f"signup said the run is {verification.get('status')}")
        ids = {customer_id for _, customer_id in self.signups}
        if len(ids) > 1:
            self.violations.append((4, f"one request_id, customers {sorted(ids)}"))
        if sum(status == 201 for status, _ in self.signups) > 1:
            self.violations.append((4, "one request_id answered 201 twice"))
        self.customer_id = self.signups[0][1]

    def _step_right(self, *, double: bool = False) -> None:
        for _ in range(MAX_ATTEMPTS + MAX_SENDS):
            code = self._latest_code()
            result = self._submit(code, double=double)
            if result in (SUCCESS, MAX_REACHED):
                return
            if result == EXPIRED:  # an outage held the client up: a fresh code is on its way
                self.notes.append("the right code had expired")
                self._await_codes(self._codes_before_submit + 1)
                continue
            # INCORRECT: a newer text replaced this code (a send retried after a crash, say)
            self._sleep(1.0)
            if self._latest_code() != code:
                self.notes.append("typed a code that a second text of the same send had replaced")
                continue
            self.notes.append("the latest code texted was judged incorrect")
            self._step_resend()
        raise Unexpected("the right code never ended the run")

    def _step_double_right(self) -> None:
        self._step_right(double=True)

    def _step_wrong(self, *, double: bool = False) -> None:
        result = self._submit(self._wrong_code(), double=double)
        if result == SUCCESS:
            self.violations.append((3, "a wrong code was answered SUCCESS"))
        elif result == EXPIRED:
            self.notes.append("the code expired before a wrong code")
            self._await_codes(self._codes_before_submit + 1)

    def _step_double_wrong(self) -> None:
        self._step_wrong(double=True)

    def _step_expire(self) -> None:
        while True:  # the text may be out before the workflow has recorded its code
            verification = self._status()
            if not verification.get("live"):
                raise Unexpected(f"no code to wait out: {verification}")
            if verification.get("code_expires_at"):
                break
            self._sleep(CODE_POLL)
        self._sleep_until_wall(verification["code_expires_at"])
        result = self._submit(self._latest_code())
        if result == EXPIRED:
            self._await_codes(self._codes_before_submit + 1)
        elif result not in (SUCCESS, MAX_REACHED):
            self.notes.append(f"a code past its expiry was answered {result}")

    def _step_resend(self) -> None:
        for _ in range(MAX_SENDS):
            verification = self._status()
            if not verification.get("live"):
                raise Unexpected(f"no run to resend for: {verification}")
            if verification.get("resend_available_at"):
                self._sleep_until_wall(verification["resend_available_at"])
            before = len(self.run.inbox.codes(self.phone))
            key = f"resend-{uuid.uuid4()}"
            status, data = self._call(
                "resend", self.http, path=f"/v1/customers/{self.customer_id}:resendCode", key=key
            )
            if status == 202:
                self.resend_keys.add(key)
                self._await_codes(before + 1)
                return
            if status == 429 and _error_code(data) == "resend_cooldown":
                continue  # the status said it was time; the workflow's clock says not quite
            raise Unexpected(f"resend answered {status}: {data}")
        raise Unexpected("the resend cooldown never ended")

    def _read_back(self) -> None:
        """Read your writes: the customer as the very next request sees them."""
        status, data = self._call("customer", self.http, path=f"/v1/customers/{self.customer_id}")
        if status != 200:
            raise Unexpected(f"reading the customer answered {status}: {data}")
        verified = data["customer"]["phone_verified"]
        if self.answered == SUCCESS and not verified:
            self.violations.append((3, "answered SUCCESS, then read phone_verified false"))
        if self.answered != SUCCESS and verified:
            self.violations.append((3, f"answered {self.answered}, then read phone_verified true"))

    # Submitting codes, and what the answers must say

    def _submit(self, code: str, *, double: bool = False) -> str:
        """Submit `code` once (or twice at once, with one key); the result, checked."""
        key = f"verify-{uuid.uuid4()}"
        self._codes_before_submit = len(self.run.inbox.codes(self.phone))
        path = f"/v1/customers/{self.customer_id}:verify"
        body = {"verification_code": code}
        answers = self._concurrently(
            2 if double else 1, lambda to: self._call("verify", to, path=path, body=body, key=key)
        )
        for status, data in answers:
            if status != 200:
                raise Unexpected(f"verify answered {status}: {data}")
        (_, first), *others = answers
        for _, other in others:
            if (other["result"], other["attempts_remaining"]) != (
                first["result"],
                first["attempts_remaining"],
            ):
                self.violations.append(
                    (2, f"one key, two answers: {_answer(first)} and {_answer(other)}")
                )
        result, remaining = first["result"], first["attempts_remaining"]
        for _, data in answers:
            self._observe(data["attempts_remaining"], f"verify {_answer(data)}")
        self.counted.append(key)
        # Every key is first sent while the run is open, so every answer, a retry's included
        # (Temporal keeps an update's outcome by its id), counts exactly the codes so far.
        expected = MAX_ATTEMPTS - len(self.counted)
        if remaining != expected:
            self.violations.append(
                (2, f"code {len(self.counted)} answered {_answer(first)}, not {expected} left")
            )
        if result == EXPIRED:
            self.expired_answers += 1
        if result in (SUCCESS, MAX_REACHED):
            self.answered = result
        return result

    def _observe(self, remaining: int | None, what: str) -> None:
        if remaining is None:
            return
        if self.remaining_seen and remaining > self.remaining_seen[-1]:
            self.violations.append(
                (
                    2,
                    f"attempts_remaining rose from {self.remaining_seen[-1]} to {remaining} "
                    f"({what})",
                )
            )
        self.remaining_seen.append(remaining)

    def _status(self) -> dict:
        status, data = self._call(
            "status", self.http, path=f"/v1/customers/{self.customer_id}/verification"
        )
        if status != 200:
            raise Unexpected(f"the status answered {status}: {data}")
        verification = data["verification"]
        if verification.get("live"):
            self._observe(verification.get("attempts_remaining"), "status")
        return verification

    # HTTP, as a careful client does it

    def _call(
        self,
        action: str,
        connection: AppClient,
        *,
        path: str = "/v1/customers",
        body: dict | None = None,
        key: str | None = None,
    ) -> tuple[int, Any]:
        """Send one request until it is answered, retrying 5xx, drops and timeouts alike."""
        method = "GET" if action in ("status", "customer") else "POST"
        headers = {"Idempotency-Key": key} if key else {}
        ledger = self.run.ledger
        request = ledger.new_request()
        sent_key = key or (body or {}).get("request_id", "")
        backoff = BACKOFF_FIRST
        for attempt in itertools.count(1):
            self._check_time()
            started = self.run.clock.now()
            call = Call(self.index, action, request, attempt, sent_key, started, started, None)
            try:
                status, raw, response_headers = connection.request(method, path, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                call.ended, call.error = self.run.clock.now(), _name(exc)
                ledger.add(call)
            else:
                data = _json(raw)
                call.ended, call.status = self.run.clock.now(), status
                call.error = _error_code(data)
                if status >= 500:
                    call.body = raw.decode(errors="replace")[:500]
                ledger.add(call)
                if status < 500:
                    return status, data
                retry_after = response_headers.get("Retry-After")
                if status == 503 and retry_after and retry_after.isdigit():
                    # Our own backoff is shorter; Retry-After only caps it.
                    backoff = min(backoff, float(retry_after))
            self._sleep(self.rng.uniform(backoff / 2, backoff))
            backoff = min(2 * backoff, BACKOFF_CAP)
        raise AssertionError("unreachable")

    def _concurrently(self, copies: int, send: Callable[[AppClient], Any]) -> list[Any]:
        """`send` on this client's connection, plus `copies - 1` more at once on others."""
        if copies == 1:
            return [send(self.http)]
        extra = [AppClient(self.run.web.port, timeout=HTTP_TIMEOUT) for _ in range(copies - 1)]
        results: list[Any] = [None] * copies
        errors: list[BaseException] = []

        def other(n: int) -> None:
            try:
                results[n + 1] = send(extra[n])
            except BaseException as error:
                errors.append(error)
            finally:
                extra[n].close()

        threads = [
            threading.Thread(target=other, args=(n,), daemon=True) for n in range(copies - 1)
        ]
        for thread in threads:
            thread.start()
        try:
            results[0] = send(self.http)
        finally:
            for thread in threads:
                thread.join()
        if errors:
            raise errors[0]
        return results

    # Codes, time

    def _await_codes(self, count: int) -> None:
        """Wait until `count` codes have been texted to this customer's phone."""
        while len(self.run.inbox.codes(self.phone)) < count:
            self._check_time()
            self._sleep(CODE_POLL)

    def _latest_code(self) -> str:
        self._await_codes(1)
        return self.run.inbox.codes(self.phone)[-1]

    def _wrong_code(self) -> str:
        texted = set(self.run.inbox.codes(self.phone))
        while True:
            code = f"{self.rng.randrange(10**CODE_LENGTH):0{CODE_LENGTH}d}"
            if code not in texted:
                return code

    def _think(self) -> None:
        self._sleep(self.rng.uniform(*THINK))

    def _sleep_until_wall(self, moment: str) -> None:
        """Sleep until a moment the app reported, in ISO 8601, is `MARGIN` past."""
        when = datetime.fromisoformat(moment)
        self._sleep((when - datetime.now(UTC)).total_seconds() + MARGIN)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self.run.stop.wait(seconds):
            raise GaveUp("the run was stopped")

    def _check_time(self) -> None:
        if self.run.stop.is_set():
            raise GaveUp("the run was stopped")
        if self.run.clock.now() > self.run.give_up_at():
            raise GaveUp(f"no end {GIVE_UP_AFTER:.0f} s after the last fault")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"raw": raw.decode(errors="replace")[:500]}


def _error_code(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("code", ""))
    return ""


def _answer(data: dict) -> str:
    return f"{data['result'].removeprefix('VERIFICATION_RESULT_')}/{data['attempts_remaining']}"


def _name(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else "dropped"


# The run


class ChaosRun:
    """The stack under test, its customers, the chaos loop, and the verdict."""

    def __init__(
        self,
        *,
        customers: int,
        faults_per_kind: int,
        seed: int,
        ramp: float,
        database_url: str,
        gunicorn_workers: int,
        workdir: Path,
    ) -> None:
        self.customer_count = customers
        self.faults_per_kind = faults_per_kind
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - chaos, not secrets
        self.ramp = ramp
        self.database_url = database_url
        self.gunicorn_workers = gunicorn_workers
        self.workdir = workdir
        self.clock = Clock()
        self.stop = threading.Event()
        self.ledger = Ledger()
        self.inbox = SmsInbox(workdir / "sms.txt")
        self.faults: list[Fault] = []
        self.chaos_done = threading.Event()
        self.chaos_thread: threading.Thread | None = None
        self.fault_error = ""
        self.customers: list[Customer] = []
        self.server: TemporalDevServer | None = None
        self.workers: list[Process] = []
        self.web: Web | None = None
        self.cluster: Any = None  # tests.outages.PostgresCluster, imported once Django is set up
        self.loop: RawLoop | None = None
        self.database_created = False
        self.started = time.monotonic()

    # Setting up and tearing down

    def run(self) -> int:
        self._check_database_url()
        self._step(
            f"{self.customer_count} customers over {self.ramp:.0f} s, "
            f"{self.faults_per_kind} fault(s) of each kind, seed {self.seed}; in {self.workdir}"
        )
        self._start_stack()
        self._drive()
        self._step("every customer is done; checking the invariants")
        return self._report(self._check())

    def _check_database_url(self) -> None:
        parts = urlsplit(self.database_url)
        name = parts.path.lstrip("/")
        if parts.scheme not in ("postgres", "postgresql", "pgsql"):
            raise BenchError(f"--database-url must name a PostgreSQL database: {parts.scheme}")
        if "chaos" not in name:
            raise BenchError(
                f"--database-url names {name!r}; the run drops and creates its database, so its "
                "name must contain 'chaos'"
            )
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise BenchError("--database-url must name a cluster on this machine (it is stopped)")
        if os.geteuid() != 0:
            raise BenchError("stopping PostgreSQL needs root (pg_ctlcluster)")

    def _start_stack(self) -> None:
        self.server = TemporalDevServer(self.workdir / "temporal.db")
        self.web = Web(
            "app", gunicorn_command([], workers=self.gunicorn_workers, threads=GUNICORN_THREADS)
        )
        env = app_environment(
            workdir=self.workdir,
            temporal_address=self.server.address,
            task_queue=f"chaos-{uuid.uuid4().hex[:8]}",
            secret_key=secrets.token_urlsafe(50),
            database_url=self.database_url,
        )
        env.update(CHAOS_SETTINGS)
        # This process reads the same settings: the ORM for the final checks.
        os.environ.clear()
        os.environ.update(env)
        import django

        django.setup()
        from tests.outages import PostgresCluster

        self.cluster = PostgresCluster.serving(urlsplit(self.database_url).port or 5432)
        if self.cluster is None:
            raise BenchError("no pg_ctlcluster-managed cluster serves --database-url")
        self._maintain_database("DROP DATABASE IF EXISTS {} WITH (FORCE)", "CREATE DATABASE {}")
        self.database_created = True
        migrate(env, self.workdir / "migrate.log")
        self._step(f"starting the Temporal dev server, {WORKERS} workers and gunicorn")
        self.server.start()
        self.workers = [
            Process(
                f"worker-{n}",
                [sys.executable, "manage.py", "run_temporal_worker"],
                env=env,
                log=self.workdir / f"worker-{n}.log",
            )
            for n in range(1, WORKERS + 1)
        ]
        for worker in self.workers:
            self._start_worker(worker)
        self.web.process = Process(
            "gunicorn", self.web.command, env=env, log=self.workdir / "gunicorn.log"
        )
        self.web.process.start()
        wait_until(self.web.healthy, what="gunicorn", processes=[self.web.process])
        self.loop = RawLoop()

    def _maintain_database(self, *statements: str) -> None:
        """Run `statements` on the cluster, each with the run's database name in its {}."""
        import psycopg
        from psycopg import sql

        parts = urlsplit(self.database_url)
        name = sql.Identifier(parts.path.lstrip("/"))
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(maintenance, autocommit=True) as connection:
            for statement in statements:
                connection.execute(sql.SQL(statement).format(name))

    def close(self, *, keep_database: bool) -> None:
        """Stop everything this run started, and start PostgreSQL again whatever happened."""
        # A second Ctrl-C must not cut the cleanup short and leave PostgreSQL stopped.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        self.stop.set()
        if self.chaos_thread is not None:
            # It ends the fault it is in (Postgres or Temporal started again) before it stops.
            self.chaos_thread.join(CHAOS_STOP_TIMEOUT)
        if self.cluster is not None and not self.cluster.accepting():
            self._step("starting PostgreSQL again")
            try:
                self.cluster.start()
            except Exception as error:  # pg_ctlcluster refuses while a start is under way
                print(f"[chaos] starting PostgreSQL: {error}", file=sys.stderr)
                time.sleep(2)
                if not self.cluster.accepting():
                    self.cluster.start()
        if self.web is not None and self.web.process is not None:
            self.web.process.stop()
        for worker in self.workers:
            worker.stop()
        if self.server is not None:
            self.server.stop()
        if self.loop is not None:
            self.loop.close()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if self.database_created and not keep_database:
            try:
                self._maintain_database("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            except Exception as error:
                print(f"[chaos] could not drop the database: {error}", file=sys.stderr)
        print(f"chaos took {time.monotonic() - self.started:.0f} s")

    def _start_worker(self, worker: Process) -> None:
        offset = worker.log.stat().st_size if worker.log.exists() else 0
        worker.start()
        wait_until(
            lambda: WORKER_READY in worker.log.read_bytes()[offset:],
            what=worker.name,
            processes=[worker],
        )

    def _step(self, text: str) -> None:
        print(f"[chaos] {text}", flush=True)

    # Customers and chaos, at once

    def _drive(self) -> None:
        names = list(PATHS)
        self.customers = [
            Customer(self, n, self.rng.choice(names), random.Random(self.rng.random()))  # noqa: S311
            for n in range(self.customer_count)
        ]
        plan = self._fault_plan()
        self.clock = Clock()
        threads = [
            threading.Thread(target=customer, name=f"customer-{customer.index}", daemon=True)
            for customer in self.customers
        ]
        chaos = threading.Thread(target=self._chaos, args=(plan,), name="chaos", daemon=True)
        self.chaos_thread = chaos
        for thread in threads:
            thread.start()
        chaos.start()
        join(threads)
        while not self.chaos_done.wait(0.2):
            pass

    def _fault_plan(self) -> list[tuple[float, str]]:
        """When each fault begins: one per slot of the window, the kinds in random order."""
        kinds = [kind for kind in FAULT_KINDS for _ in range(self.faults_per_kind)]
        if not kinds:
            return []
        self.rng.shuffle(kinds)
        end = max(self.ramp, FAULT_WINDOW_START + len(kinds))
        slot = (end - FAULT_WINDOW_START) / len(kinds)
        return [
            (FAULT_WINDOW_START + n * slot + self.rng.uniform(0, slot * 0.7), kind)
            for n, kind in enumerate(kinds)
        ]

    def _chaos(self, plan: list[tuple[float, str]]) -> None:
        try:
            for at, kind in plan:
                previous = self.faults[-1].restored if self.faults else 0.0
                wait = max(at, (previous or 0.0) + 1.0) - self.clock.now()
                if wait > 0 and self.stop.wait(wait):
                    return
                fault = getattr(self, f"_inject_{kind}")()
                self._step(
                    f"{fault.injected:6.1f} s  {fault.target}; back after "
                    f"{(fault.restored or fault.injected) - fault.injected:.1f} s"
                )
                if self.stop.is_set():
                    return
        except Exception:
            self.fault_error = traceback.format_exc()
            print(f"[chaos] the chaos loop failed:\n{self.fault_error}", file=sys.stderr)
        finally:
            self.chaos_done.set()
        # The workers this thread started again get SIGTERM when the thread that started them
        # ends (PR_SET_PDEATHSIG follows the thread, not the process): it lives until the end.
        self.stop.wait()

    def give_up_at(self) -> float:
        """When clients stop trying: long after the last fault, never before the chaos ends."""
        if not self.chaos_done.is_set():
            return float("inf")
        last = max((fault.restored or fault.injected for fault in self.faults), default=0.0)
        return max(last, self.ramp) + GIVE_UP_AFTER

    def _record(self, kind: str, target: str) -> Fault:
        fault = Fault(kind, target, self.clock.now())
        self.faults.append(fault)
        return fault

    def _down(self, seconds: tuple[float, float]) -> None:
        time.sleep(self.rng.uniform(*seconds))

    def _inject_worker(self) -> Fault:
        worker = self.rng.choice(self.workers)
        fault = self._record("worker", f"SIGKILL {worker.name} (pid {worker.pid}), start it again")
        try:
            worker.kill()
            self._down(WORKER_DOWN)
        finally:
            self._start_worker(worker)
            fault.restored = self.clock.now()
        return fault

    def _inject_gunicorn(self) -> Fault:
        assert self.web is not None
        before = self.web.worker_pids()
        pid = self.rng.choice(before)
        fault = self._record("gunicorn", f"SIGKILL gunicorn worker pid {pid}")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + GUNICORN_RESPAWN_TIMEOUT
        while True:
            now = self.web.worker_pids()
            if len(now) >= len(before) and pid not in now:
                break
            if time.monotonic() > deadline:
                raise BenchError("gunicorn did not replace its killed worker")
            time.sleep(0.05)
        fault.restored = self.clock.now()
        return fault

    def _inject_temporal(self) -> Fault:
        assert self.server is not None
        fault = self._record("temporal", "SIGKILL the Temporal server, restart on its db file")
        try:
            self.server.kill()
            self._down(TEMPORAL_DOWN)
        finally:
            self.server.start()
            fault.restored = self.clock.now()
        return fault

    def _inject_postgres(self) -> Fault:
        cluster = self.cluster
        fault = self._record(
            "postgres", f"stop PostgreSQL {cluster.version}/{cluster.name} -m immediate, start"
        )
        try:
            cluster.stop()
            self._down(POSTGRES_DOWN)
        finally:
            cluster.start()
            fault.restored = self.clock.now()
        return fault

    # The verdict

    def _check(self) -> Verdict:
        verdict = Verdict(self)
        verdict.check()
        return verdict

    def _report(self, verdict: Verdict) -> int:
        verdict.show()
        self._save_evidence()
        return 1 if verdict.failed() else 0

    def _save_evidence(self) -> None:
        """Every request, fault and customer as JSON lines beside the logs, for a post-mortem."""
        with (self.workdir / "requests.jsonl").open("w") as out:
            for call in self.ledger.calls:
                out.write(json.dumps(dataclasses.asdict(call)) + "\n")
        with (self.workdir / "faults.jsonl").open("w") as out:
            for fault in self.faults:
                out.write(json.dumps(dataclasses.asdict(fault)) + "\n")
        with (self.workdir / "customers.jsonl").open("w") as out:
            for c in self.customers:
                seen = {
                    "index": c.index,
                    "customer_id": c.customer_id,
                    "path": c.path,
                    "phone": c.phone,
                    "request_id": c.request_id,
                    "answered": c.answered,
                    "remaining_seen": c.remaining_seen,
                    "codes_texted": self.inbox.codes(c.phone),
                    "violations": c.violations,
                    "notes": c.notes,
                    "gave_up": c.gave_up,
                    "finished_at": c.finished_at,
                }
                out.write(json.dumps(seen) + "\n")


@dataclass
class RunFacts:
    """What Temporal says about one customer's verification."""

    status: str
    run_id: str = ""
    runs: int = 0  # runs of the workflow id, open or closed
    state: str = ""
    attempts_used: int | None = None
    sends_used: int | None = None


@dataclass
class FaultImpact:
    """What one fault did to the clients."""

    unavailable: int = 0  # answers 503
    dropped: int = 0  # connections dropped, or timed out
    # Of the requests it held up (in flight while it lasted, or failed near it), retries included:
    recovery: float = 0.0  # from the fault's end until the last of them was answered
    longest_wait: float = 0.0  # the longest one of them took


@dataclass
class Check:
    """One invariant's verdict: what was checked, and each failure with its evidence."""

    number: int
    checked: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


class Verdict:
    """The six invariants, checked against Temporal, the database and what the clients saw."""

    def __init__(self, run: ChaosRun) -> None:
        self.run = run
        self.checks = {number: Check(number) for number in INVARIANTS}
        self.facts: dict[str, RunFacts] = {}
        self.closed_at: float | None = None
        self.verified: dict[str, bool] = {}  # Customer.phone_verified, by customer id
        self.runs_listed = 0
        self.running_listed: Counter[str] = Counter()  # open runs, by workflow id
        self.impact: dict[int, FaultImpact] = {}  # by fault, its index in run.faults
        self._temporal: Any = None  # a temporalio Client, connected on the run's loop

    def failed(self) -> bool:
        return any(not check.passed for check in self.checks.values())

    def check(self) -> None:
        run = self.run
        by_id = {c.customer_id: c for c in run.customers if c.customer_id}
        self._wait_closed(list(by_id))
        self.facts = run.loop.run(self._inspect(list(by_id)), timeout=300)
        from django.db import close_old_connections

        close_old_connections()
        self._final_state(by_id)
        self._attempts(by_id)
        self._answers(by_id)
        self._duplicates(by_id)
        self._failures()
        self._finished()

    def _wait_closed(self, customer_ids: list[str]) -> None:
        """Wait until every run has closed, at most until the finishing bound has passed."""
        run = self.run
        last_fault = self._last_fault()
        deadline = max(last_fault, run.ramp) + FINISH_BOUND + 5
        open_ids = customer_ids
        while True:
            statuses = run.loop.run(self._statuses(open_ids))
            open_ids = [cid for cid, status in statuses.items() if status == "RUNNING"]
            if not open_ids:
                self.closed_at = run.clock.now()
                return
            if run.clock.now() > deadline:
                return
            time.sleep(1.0)

    def _last_fault(self) -> float:
        """When the last fault ended; with no faults, when the last customer started."""
        return max((f.restored or f.injected for f in self.run.faults), default=self.run.ramp)

    async def _client(self) -> Any:
        from temporalio.client import Client

        if self._temporal is None:
            assert self.run.server is not None
            self._temporal = await Client.connect(self.run.server.address, namespace="default")
        return self._temporal

    async def _statuses(self, customer_ids: list[str]) -> dict[str, str]:
        """Each customer's run status in Temporal: RUNNING, COMPLETED, ..., or NOT_FOUND."""
        from temporalio.service import RPCError, RPCStatusCode

        from verification.contracts import workflow_id_for

        client = await self._client()
        limit = asyncio.Semaphore(20)

        async def one(customer_id: str) -> tuple[str, str]:
            async with limit:
                handle = client.get_workflow_handle(workflow_id_for(customer_id))
                try:
                    description = await handle.describe()
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise
                    return customer_id, "NOT_FOUND"
                return customer_id, description.status.name

        return dict(await asyncio.gather(*(one(cid) for cid in customer_ids)))

    async def _inspect(self, customer_ids: list[str]) -> dict[str, RunFacts]:
        from temporalio.client import WorkflowExecutionStatus
        from temporalio.service import RPCError, RPCStatusCode

        from verification.contracts import (
            STATUS_QUERY,
            WORKFLOW_TYPE,
            VerificationStatus,
            VerifyPhoneOutcome,
            workflow_id_for,
        )

        client = await self._client()
        limit = asyncio.Semaphore(20)

        async def one(customer_id: str) -> tuple[str, RunFacts]:
            async with limit:
                handle = client.get_workflow_handle(
                    workflow_id_for(customer_id), result_type=VerifyPhoneOutcome
                )
                try:
                    description = await handle.describe()
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise
                    return customer_id, RunFacts("NOT_FOUND")
                facts = RunFacts(description.status.name, description.run_id)
                if description.status == WorkflowExecutionStatus.COMPLETED:
                    outcome = await handle.result()
                    facts.state, facts.attempts_used = outcome.state.value, outcome.attempts_used
                if description.status in (
                    WorkflowExecutionStatus.COMPLETED,
                    WorkflowExecutionStatus.RUNNING,
                ):
                    # A closed run answers queries too, replayed by a worker.
                    status = await handle.query(STATUS_QUERY, result_type=VerificationStatus)
                    facts.sends_used = MAX_SENDS - status.sends_remaining
                    if description.status == WorkflowExecutionStatus.RUNNING:
                        facts.state = status.state.value
                        facts.attempts_used = MAX_ATTEMPTS - status.attempts_remaining
                return customer_id, facts

        facts = dict(await asyncio.gather(*(one(cid) for cid in customer_ids)))
        runs: Counter[str] = Counter()
        running: Counter[str] = Counter()
        async for execution in client.list_workflows(f'WorkflowType="{WORKFLOW_TYPE}"'):
            runs[execution.id] += 1
            running[execution.id] += execution.status == WorkflowExecutionStatus.RUNNING
        self.runs_listed = sum(runs.values())
        self.running_listed = running
        for customer_id, fact in facts.items():
            fact.runs = runs[workflow_id_for(customer_id)]
        return facts

    # The invariants

    def _final_state(self, by_id: dict[str, Customer]) -> None:
        from customers.models import Customer as CustomerRow
        from verification.models import Verification

        check = self.checks[1]
        verified = dict(
            CustomerRow.objects.filter(pk__in=list(by_id)).values_list("id", "phone_verified")
        )
        rows: dict[str, list[Verification]] = defaultdict(list)
        for row in Verification.objects.filter(customer_id__in=list(by_id)):
            rows[str(row.customer_id)].append(row)
        self.verified = {str(cid): flag for cid, flag in verified.items()}
        agree = 0
        for customer_id, customer in by_id.items():
            facts = self.facts[customer_id]
            who = f"customer {customer.index} ({customer_id}, {customer.path})"
            mine = rows.get(customer_id, [])
            # An open run (invariant 6 fails it) must agree too: pending, and not verified.
            if facts.status not in ("COMPLETED", "RUNNING"):
                check.failures.append(f"{who}: Temporal says the run is {facts.status}")
                continue
            if len(mine) != 1:
                check.failures.append(f"{who}: {len(mine)} Verification rows")
                continue
            row = mine[0]
            problems = []
            if row.run_id != facts.run_id:
                problems.append(f"row's run {row.run_id}, Temporal's {facts.run_id}")
            if row.status != facts.state:
                problems.append(f"Temporal says {facts.state}, the row {row.status}")
            if self.verified.get(customer_id) != (facts.state == "verified"):
                problems.append(
                    f"Temporal says {facts.state}, phone_verified is "
                    f"{self.verified.get(customer_id)}"
                )
            if problems:
                check.failures.append(f"{who}: " + "; ".join(problems))
            else:
                agree += 1
        closed_pending = [
            row
            for customer_id, mine in rows.items()
            for row in mine
            if row.status == "pending"
            and self.facts.get(customer_id, RunFacts("")).status not in ("RUNNING", "")
        ]
        for row in closed_pending:
            check.failures.append(f"pending row of a closed run: {row.workflow_id} {row.run_id}")
        states = Counter(f.state for f in self.facts.values())
        check.checked = (
            f"{agree}/{len(by_id)} agree ({_counts(states)}); "
            f"{len(closed_pending)} pending rows of closed runs"
        )

    def _attempts(self, by_id: dict[str, Customer]) -> None:
        check = self.checks[2]
        keys = remaining_seen = repeated = 0
        for customer_id, customer in by_id.items():
            facts = self.facts[customer_id]
            who = f"customer {customer.index} ({customer_id}, {customer.path})"
            for number, what in customer.violations:
                if number == 2:
                    check.failures.append(f"{who}: {what}")
            remaining_seen += len(customer.remaining_seen)
            # A send retried after a crash may text again, but never another code: a second
            # code would make the first stale and cost the customer an attempt.
            texted = self.run.inbox.codes(customer.phone)
            repeated += len(texted) - len(set(texted))
            if facts.sends_used is not None and len(set(texted)) > facts.sends_used:
                check.failures.append(
                    f"{who}: {len(set(texted))} different codes texted for {facts.sends_used} sends"
                )
            if facts.attempts_used is None:
                continue
            if facts.attempts_used > MAX_ATTEMPTS:
                check.failures.append(f"{who}: {facts.attempts_used} attempts used")
            if not customer.gave_up:
                keys += len(customer.counted)
                if facts.attempts_used != len(customer.counted):
                    check.failures.append(
                        f"{who}: Temporal counted {facts.attempts_used} attempts, the client "
                        f"submitted {len(customer.counted)} keys"
                    )
                sends = min(MAX_SENDS, 1 + len(customer.resend_keys) + customer.expired_answers)
                if facts.sends_used is not None and facts.sends_used != sends:
                    check.failures.append(
                        f"{who}: {facts.sends_used} sends, expected {sends} (1 + "
                        f"{len(customer.resend_keys)} resends + {customer.expired_answers} "
                        "expiries)"
                    )
        again = _keys_sent_again(self.run.ledger, ("verify", "resend"))
        check.checked = (
            f"{keys} codes submitted = attempts counted, <= {MAX_ATTEMPTS} a run; {again} keys "
            f"sent again (double submits, retries) counted once; sends = 1 + resends + "
            f"expiries, one code each ({repeated} texted again, the same code); "
            f"{remaining_seen} attempts_remaining seen, none rose"
        )

    def _answers(self, by_id: dict[str, Customer]) -> None:
        check = self.checks[3]
        told = sum(c.answered == SUCCESS for c in by_id.values())
        for customer_id, customer in by_id.items():
            who = f"customer {customer.index} ({customer_id}, {customer.path})"
            for number, what in customer.violations:
                if number == 3:
                    check.failures.append(f"{who}: {what}")
            verified = self.verified.get(customer_id)
            if customer.answered == SUCCESS and not verified:
                check.failures.append(f"{who}: answered SUCCESS, not verified")
            if customer.answered != SUCCESS and verified:
                check.failures.append(f"{who}: never answered SUCCESS, yet verified")
        check.checked = (
            f"{told} answered SUCCESS, all verified; {len(by_id) - told} never, none verified; "
            "each read back at once"
        )

    def _duplicates(self, by_id: dict[str, Customer]) -> None:
        from customers.models import Customer as CustomerRow

        check = self.checks[4]
        run = self.run
        per_request = Counter(
            CustomerRow.objects.filter(
                request_id__in=[c.request_id for c in run.customers]
            ).values_list("request_id", flat=True)
        )
        total = CustomerRow.objects.count()
        for customer in run.customers:
            who = f"customer {customer.index} ({customer.customer_id}, {customer.path})"
            for number, what in customer.violations:
                if number == 4:
                    check.failures.append(f"{who}: {what}")
            if per_request[customer.request_id] != 1:
                check.failures.append(f"{who}: {per_request[customer.request_id]} customers")
        if total != len(run.customers):
            check.failures.append(f"{total} customers in the database for {len(run.customers)}")
        for customer_id, customer in by_id.items():
            facts = self.facts[customer_id]
            if facts.runs != 1 or self.running_listed[f"verify-phone-{customer_id}"] > 1:
                check.failures.append(
                    f"customer {customer.index} ({customer_id}): {facts.runs} runs, "
                    f"{self.running_listed[f'verify-phone-{customer_id}']} running"
                )
        again = _keys_sent_again(run.ledger, ("signup",))
        check.checked = (
            f"{len(run.customers)} request_ids -> {total} customers ({again} sent again: twice "
            f"at once, or retried); {self.runs_listed} runs, 1 per customer"
        )

    def _failures(self) -> None:
        check = self.checks[5]
        faults = self.run.faults
        ends = [f.restored or f.injected for f in faults]

        def blame(start: float, end: float, *, slack: float = RECOVERY_BOUND) -> int | None:
            """The fault a try from `start` to `end` met: the latest one under way then, else
            the latest one that ended less than `slack` before it."""
            for reach in (min(ATTRIBUTION_SLACK, slack), slack):
                hits = [
                    n
                    for n, f in enumerate(faults)
                    if start <= ends[n] + reach and end >= f.injected
                ]
                if hits:
                    return max(hits)
            return None

        self.impact = {n: FaultImpact() for n in range(len(faults))}
        for call in self.run.ledger.calls:
            what = (
                f"customer {call.customer} {call.action} try {call.attempt} at "
                f"{call.started:.1f}-{call.ended:.1f} s"
            )
            if call.status is not None and call.status >= 500 and call.status != 503:
                check.failures.append(f"{what}: {call.status} {call.error} {call.body[:300]}")
            if call.status is not None and call.status < 500:
                continue
            fault = blame(call.started, call.ended)
            if fault is None:
                check.failures.append(f"{what}: {call.status or call.error}, and no fault near")
                continue
            impact = self.impact[fault]
            if call.status == 503:
                impact.unavailable += 1
            else:
                impact.dropped += 1
        for tries in self.run.ledger.requests().values():
            first, last = tries[0], tries[-1]
            failed = [t for t in tries if t.status is None or t.status >= 500]
            if failed:  # the fault its first failure met
                fault = blame(failed[0].started, failed[0].ended)
            else:  # answered at once, but perhaps only once a fault under way was over
                fault = blame(first.started, last.ended, slack=0.0)
            if fault is None:
                continue
            impact = self.impact[fault]
            impact.longest_wait = max(impact.longest_wait, last.ended - first.started)
            impact.recovery = max(impact.recovery, last.ended - ends[fault])
        calls = self.run.ledger.calls
        other_5xx = sum(c.status is not None and c.status >= 500 and c.status != 503 for c in calls)
        worst = max(self.impact, key=lambda n: self.impact[n].recovery, default=None)
        where = ""
        if worst is not None:
            where = f", after fault {worst + 1} ({faults[worst].kind})"
        check.checked = (
            f"{other_5xx} other 5xx; {sum(c.status == 503 for c in calls)} 503s and "
            f"{sum(c.status is None for c in calls)} drops, each within a fault + "
            f"{RECOVERY_BOUND:.0f} s; longest recovery "
            f"{max((i.recovery for i in self.impact.values()), default=0.0):.1f} s{where}"
        )

    def _finished(self) -> None:
        check = self.checks[6]
        run = self.run
        for customer in run.customers:
            if customer.gave_up:
                check.failures.append(
                    f"customer {customer.index} ({customer.customer_id}, {customer.path}) "
                    f"did not finish: {customer.gave_up.strip()[-600:]}"
                )
        still_open = [cid for cid, f in self.facts.items() if f.status == "RUNNING"]
        for customer_id in still_open:
            check.failures.append(f"the run of {customer_id} is still open")
        if run.fault_error:
            check.failures.append(f"the chaos loop failed: {run.fault_error}")
        for process in [*run.workers, run.web.process]:
            if process.popen is not None and process.popen.poll() is not None:
                check.failures.append(
                    f"{process.name} exited by itself ({process.popen.returncode}):\n"
                    f"{process.log_tail(10)}"
                )
        last_fault = self._last_fault()
        ends = [c.finished_at for c in run.customers if c.finished_at is not None]
        end = max([*ends, self.closed_at or 0.0])
        after = end - last_fault
        if after > FINISH_BOUND:
            check.failures.append(
                f"the last flow ended {after:.1f} s after the last fault (bound {FINISH_BOUND:.0f})"
            )
        check.checked = (
            f"{len(ends) - sum(bool(c.gave_up) for c in run.customers)}/{len(run.customers)} "
            f"flows ended, every run closed {after:.1f} s after the last fault "
            f"(bound {FINISH_BOUND:.0f} s)"
        )

    # The table

    def show(self) -> None:
        run = self.run
        print()
        print(
            f"chaos: {len(run.customers)} customers over {run.ramp:.0f} s, seed {run.seed}; "
            f"gunicorn {run.gunicorn_workers} workers x {GUNICORN_THREADS} threads, "
            f"{WORKERS} Temporal workers, PostgreSQL {run.cluster.version}/{run.cluster.name} "
            f"({urlsplit(run.database_url).path.lstrip('/')}), Temporal dev server on a file"
        )
        print(
            f"settings: code TTL {CODE_TTL} s, {MAX_ATTEMPTS} attempts, resend cooldown "
            f"{RESEND_COOLDOWN} s, {MAX_SENDS} sends, request bound {REQUEST_TIMEOUT} s, "
            f"reconcile every {RECONCILE_INTERVAL} s; SMS fails {SMS_FAILURE_RATE:.0%} of sends"
        )
        print("\nfaults injected")
        rows = [
            (
                f"{n + 1}",
                fault.kind,
                f"{fault.injected:.1f}",
                f"{(fault.restored or fault.injected) - fault.injected:.1f}",
                str(self.impact[n].unavailable),
                str(self.impact[n].dropped),
                f"{self.impact[n].longest_wait:.1f}",
                f"{self.impact[n].recovery:.1f}",
                fault.target,
            )
            for n, fault in enumerate(run.faults)
        ]
        sms_sent = sum(len(run.inbox.codes(c.phone)) for c in run.customers)
        failures_file = Path(str(run.inbox.path) + ".failures")
        sms_failed = len(failures_file.read_text().splitlines()) if failures_file.exists() else 0
        _table(
            (
                "#",
                "kind",
                "at s",
                "down s",
                "503s",
                "drops",
                "longest wait s",
                "recovery s",
                "what",
            ),
            rows,
            left=(1, 8),
        )
        share = sms_failed / max(1, sms_failed + sms_sent)
        print(f"SMS sends failed on purpose: {sms_failed} of {sms_failed + sms_sent} ({share:.0%})")
        asked = sum(f.sends_used or 0 for f in self.facts.values())
        again = sum(
            max(0, len(run.inbox.codes(c.phone)) - (self.facts[c.customer_id].sends_used or 0))
            for c in run.customers
            if c.customer_id in self.facts
        )
        print(
            f"SMS texted: {sms_sent} for the {asked} sends the runs asked for; {again} texted "
            "again by a send retried after a crash"
        )

        print("\npaths")
        path_rows = []
        for path in PATHS:
            mine = [c for c in run.customers if c.path == path]
            outcomes = Counter(
                (c.answered or "none").removeprefix("VERIFICATION_RESULT_") for c in mine
            )
            noted = sum(bool(c.notes) for c in mine)
            path_rows.append((path, str(len(mine)), _counts(outcomes), str(noted)))
        _table(("path", "customers", "answered", "off plan"), path_rows, left=(0, 2))

        print("\nrequests by status")
        statuses: dict[str, Counter[str]] = defaultdict(Counter)
        for call in run.ledger.calls:
            statuses[call.action][str(call.status) if call.status else call.error] += 1
        columns = sorted({key for counter in statuses.values() for key in counter})
        request_rows = [
            (action, *(str(statuses[action].get(col, "")) for col in columns))
            for action in ("signup", "verify", "resend", "status", "customer")
            if action in statuses
        ]
        total = Counter()
        for counter in statuses.values():
            total.update(counter)
        request_rows.append(("all", *(str(total.get(col, "")) for col in columns)))
        _table(("request", *columns), request_rows)

        print("\ninvariants")
        verdict_rows = [
            (
                f"{number} {INVARIANTS[number]}",
                "PASS" if check.passed else f"FAIL ({len(check.failures)})",
                check.checked,
            )
            for number, check in self.checks.items()
        ]
        _table(("invariant", "result", "checked"), verdict_rows, left=(0, 1, 2))
        passed = sum(check.passed for check in self.checks.values())
        elapsed = time.monotonic() - run.started
        print(
            f"\ninvariants: {passed} of {len(self.checks)} passed; "
            f"{len(run.ledger.calls)} requests, "
            f"{sum(c.status == 503 for c in run.ledger.calls)} answered 503; "
            f"total time {elapsed:.0f} s"
        )
        for number, check in self.checks.items():
            for failure in check.failures[:20]:
                print(f"  invariant {number}: {failure}")
            if len(check.failures) > 20:
                print(f"  invariant {number}: ... and {len(check.failures) - 20} more")
        noted: dict[str, list[Customer]] = defaultdict(list)
        for customer in run.customers:
            for note in customer.notes:
                noted[note].append(customer)
        if noted:
            print("\noff plan (not invariant failures):")
            for note, customers in sorted(noted.items(), key=lambda item: -len(item[1])):
                who = ", ".join(f"{c.index} ({c.customer_id})" for c in customers[:3])
                more = f" and {len(customers) - 3} more" if len(customers) > 3 else ""
                print(f"  {len(customers)} x {note}: customer {who}{more}")


def _keys_sent_again(ledger: Ledger, actions: tuple[str, ...]) -> int:
    """How many Idempotency-Keys (or request_ids) of `actions` were sent more than once."""
    sent = Counter(call.key for call in ledger.calls if call.action in actions and call.key)
    return sum(count > 1 for count in sent.values())


def _counts(counter: Counter) -> str:
    return ", ".join(f"{key} {count}" for key, count in counter.most_common())


def _table(
    header: tuple[str, ...], rows: list[tuple[str, ...]], *, left: tuple[int, ...] = (0,)
) -> None:
    """Print rows under a header, columns aligned: numbers to the right, `left` to the left."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        print("  ".join(cells).rstrip())


if __name__ == "__main__":
    sys.exit(main())
