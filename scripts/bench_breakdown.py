"""Where an app request's time goes: one status query and one code submission, layer by layer.

Starts a dev server, worker and gunicorn as `make bench` does, then times each layer on the
same open runs, interleaved round by round:

  raw       the SDK call on its own event loop (the bench's raw side)
  hop       the same call made from another thread, through run_coroutine_threadsafe
  gateway   the app's `gateway.call` (that hop, plus its time bound)
  service   the app's selector or service function (`verification_get_view`, `..._submit_code`)
  wsgi      Django's WSGI handler called in this process: middleware, DRF, the view, the service
  http      the same request through gunicorn, over one keep-alive connection

then Django and DRF alone, with Temporal's answer stubbed, and a cProfile of them.

  .venv/bin/python scripts/bench_breakdown.py [--rounds 300] [--profile 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_stack import (
    AppClient,
    RawLoop,
    SmsInbox,
    Stack,
    cpu_seconds,
    gunicorn_command,
    migrate,
    wrong_code,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--profile", type=int, default=2000, help="stubbed requests to profile")
    parser.add_argument("--gunicorn-args", default="")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="coffeeshop-breakdown-"))
    loop = RawLoop()
    stack = Stack(
        "wal",
        workdir=workdir,
        secret_key=secrets.token_urlsafe(50),
        wal=True,
        webs={"app": gunicorn_command(args.gunicorn_args.split())},
    )
    try:
        migrate(stack.env, workdir / "migrate.log")
        os.environ.clear()
        os.environ.update(stack.env)
        import django

        django.setup()
        stack.start(loop)
        _breakdown(stack, loop, SmsInbox(workdir / "sms.txt"), args.rounds, args.profile)
    finally:
        stack.stop()
        loop.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _breakdown(stack: Stack, loop: RawLoop, inbox: SmsInbox, rounds: int, profiled: int) -> None:
    import bench_raw
    from django.core.wsgi import get_wsgi_application

    from coffeeshop.temporal.client import gateway
    from customers.models import Customer
    from verification.selectors import verification_get_view
    from verification.services import verification_submit_code

    customers = []
    for n in range(10):
        customer = Customer.objects.create(
            first_name="Raw",
            last_name="Bench",
            email="raw@example.com",
            phone_number=f"+447711{n:06d}",
        )
        customers.append((str(customer.id), customer.phone_number))

    async def start_all() -> None:
        await asyncio.gather(*(bench_raw.sign_up(stack, cid) for cid, _ in customers))

    loop.run(start_all())
    pool = [(cid, wrong_code(inbox.wait(phone))) for cid, phone in customers]
    application = get_wsgi_application()
    client = AppClient(stack.webs["app"].port)
    inside: list[float] = []  # time spent in gateway.call during the last WSGI request
    real_call = gateway.call

    def timed_call(operation, timeout=None):
        began = time.perf_counter()
        try:
            return real_call(operation, timeout=timeout)
        finally:
            inside.append(time.perf_counter() - began)

    def wsgi_outside(method: str, path: str, body: dict | None = None) -> float:
        """Time a WSGI request, less the time spent waiting in gateway.call."""
        inside.clear()
        gateway.call = timed_call
        try:
            elapsed = _timed(lambda: _wsgi(application, method, path, body))
        finally:
            gateway.call = real_call
        return elapsed - sum(inside)

    def status_layers(cid: str, wrong: str) -> dict:
        async def timed_raw() -> float:
            began = time.perf_counter()
            await bench_raw.status(stack, cid)
            return time.perf_counter() - began

        return {
            "raw": lambda: loop.run(timed_raw()),
            "hop": lambda: _timed(lambda: loop.run(bench_raw.status(stack, cid))),
            "gateway": lambda: _timed(lambda: gateway.call(lambda c: bench_raw.status(stack, cid))),
            "service": lambda: _timed(lambda: verification_get_view(customer_id=cid)),
            "wsgi": lambda: _timed(
                lambda: _wsgi(application, "GET", f"/v1/customers/{cid}/verification")
            ),
            "http": lambda: _timed_http(client, "GET", f"/v1/customers/{cid}/verification"),
            "django": lambda: wsgi_outside("GET", f"/v1/customers/{cid}/verification"),
        }

    def verify_layers(cid: str, wrong: str) -> dict:
        body = {"verification_code": wrong}

        async def timed_raw() -> float:
            began = time.perf_counter()
            await bench_raw.submit(stack, cid, wrong)
            return time.perf_counter() - began

        return {
            "raw": lambda: loop.run(timed_raw()),
            "hop": lambda: _timed(lambda: loop.run(bench_raw.submit(stack, cid, wrong))),
            "gateway": lambda: _timed(
                lambda: gateway.call(lambda c: bench_raw.submit(stack, cid, wrong))
            ),
            "service": lambda: _timed(
                lambda: verification_submit_code(customer_id=uuid.UUID(cid), code=wrong)
            ),
            "wsgi": lambda: _timed(
                lambda: _wsgi(application, "POST", f"/v1/customers/{cid}:verify", body)
            ),
            "http": lambda: _timed_http(client, "POST", f"/v1/customers/{cid}:verify", body),
            "django": lambda: wsgi_outside("POST", f"/v1/customers/{cid}:verify", body),
        }

    for name, layers in (("status", status_layers), ("verify", verify_layers)):
        times: dict[str, list[float]] = {}
        for i in range(rounds + 10):
            cid, wrong = pool[i % len(pool)]
            order = list(layers(cid, wrong).items())
            if i % 2:
                order.reverse()
            for layer, call in order:
                elapsed = call()
                if i >= 10:  # the first rounds warm up
                    times.setdefault(layer, []).append(1000 * elapsed)
        print(f"\n{name}: p50 and p95 ms by layer, n={rounds}, and what each layer adds at p50")
        previous = None
        for layer in ("raw", "hop", "gateway", "service", "wsgi", "http"):
            p50 = statistics.median(times[layer])
            p95 = statistics.quantiles(times[layer], n=100)[94]
            added = "" if previous is None else f"{p50 - previous:+.2f}"
            print(f"  {layer:<8} {p50:7.2f} {p95:7.2f}  {added}")
            previous = p50
        django = times["django"]
        print(
            f"  (a WSGI request outside gateway.call: p50 {statistics.median(django):.2f}, "
            f"p95 {statistics.quantiles(django, n=100)[94]:.2f})"
        )
    _cpu_per_call(stack, loop, client, pool, rounds)
    _profile_stubbed(application, pool, profiled)


def _cpu_per_call(stack: Stack, loop: RawLoop, client: AppClient, pool, rounds: int) -> None:
    """CPU per call, one call at a time: gunicorn's workers for a request, this process for a
    raw SDK call (its event loop and the SDK's native threads)."""
    import bench_raw

    web = stack.webs["app"]
    web_pids = [web.process.pid, *web.worker_pids()]
    me = os.getpid()

    async def raw_calls(kind: str) -> None:
        for i in range(rounds):
            cid, wrong = pool[i % len(pool)]
            if kind == "status":
                await bench_raw.status(stack, cid)
            else:
                await bench_raw.submit(stack, cid, wrong)

    print("\nCPU ms per call, calls made one at a time:")
    for kind in ("status", "verify"):
        before = cpu_seconds(me)
        loop.run(raw_calls(kind))
        raw = cpu_seconds(me) - before
        before_web, before_me = sum(cpu_seconds(pid) for pid in web_pids), cpu_seconds(me)
        for i in range(rounds):
            cid, wrong = pool[i % len(pool)]
            if kind == "status":
                client.expect(200, "GET", f"/v1/customers/{cid}/verification")
            else:
                client.expect(
                    200, "POST", f"/v1/customers/{cid}:verify", {"verification_code": wrong}
                )
        web_cpu = sum(cpu_seconds(pid) for pid in web_pids) - before_web
        client_cpu = cpu_seconds(me) - before_me
        print(
            f"  {kind}: raw SDK call {1000 * raw / rounds:.2f}; through gunicorn: its workers "
            f"{1000 * web_cpu / rounds:.2f}, the HTTP client {1000 * client_cpu / rounds:.2f}"
        )


def _profile_stubbed(application, pool, count: int) -> None:
    """Django and DRF alone: Temporal's answer stubbed, so only the web tier's CPU remains."""
    from datetime import UTC, datetime

    from coffeeshop.temporal.client import gateway
    from verification.contracts import (
        SubmitCodeResult,
        VerificationResult,
        VerificationState,
        VerificationStatus,
    )

    now = datetime.now(UTC)
    answers = {
        "status": VerificationStatus(
            state=VerificationState.PENDING,
            attempts_remaining=3,
            sends_remaining=4,
            code_expires_at=now,
            resend_available_at=now,
            window_ends_at=now,
            run_id="run",
            started_at=now,
        ),
        "verify": SubmitCodeResult(result=VerificationResult.INCORRECT_CODE, attempts_remaining=2),
    }
    real_call = gateway.call
    cid, wrong = pool[0]
    requests = {
        "status": ("GET", f"/v1/customers/{cid}/verification", None),
        "verify": ("POST", f"/v1/customers/{cid}:verify", {"verification_code": wrong}),
    }
    try:
        for name, (method, path, body) in requests.items():
            answer = answers[name]
            gateway.call = lambda operation, timeout=None, answer=answer: answer

            def request(method=method, path=path, body=body) -> bytes:
                return _wsgi(application, method, path, body)

            for _ in range(200):
                request()
            samples = [1000 * _timed(request) for _ in range(count)]
            print(
                f"\n{name} with Temporal stubbed, in-process WSGI: p50 "
                f"{statistics.median(samples):.3f} ms, mean {statistics.fmean(samples):.3f} ms"
            )
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(count):
                request()
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(45)
            print(out.getvalue())
    finally:
        gateway.call = real_call


def _timed(call) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def _timed_http(client: AppClient, method: str, path: str, body: dict | None = None) -> float:
    client.ready()
    began = time.perf_counter()
    client.expect(200, method, path, body)
    return time.perf_counter() - began


def _wsgi(application, method: str, path: str, body: dict | None = None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses = []
    response = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    content = b"".join(response)
    response.close()
    if not statuses[0].startswith("200"):
        raise RuntimeError(f"{method} {path}: {statuses[0]} {content[:300]!r}")
    return content


if __name__ == "__main__":
    sys.exit(main())
