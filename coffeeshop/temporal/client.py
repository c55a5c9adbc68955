"""The process's Temporal client. Used by the web process and the worker alike.

The worker connects with `temporal_connect()` inside its own event loop. The web tier, which is
synchronous, goes through `gateway`: one client per process, living on one background event
loop, reached with `gateway.call(...)`, which always has a time bound. Where and how to connect
(address, namespace, API key, TLS) is in the settings, which read Temporal's own environment
configuration (see the Temporal block of `coffeeshop/settings.py`).
"""

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import TypeVar

from django.conf import settings
from temporalio.client import Client, RetryConfig
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile, ClientConnectConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.errors import Unavailable
from coffeeshop.temporal.codec import PayloadDecryptionError, encryption_codec_from_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNAVAILABLE_STATUSES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
}
# Refusals of our credentials: an outage for the app (503), and a line in the log saying why.
REFUSED_STATUSES = {RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED}
# Answers about the workflow itself, which the services read (a run that has closed or never
# was). Every other refusal (a rate limit, an unknown namespace, an internal error) is an outage
# for the app: 503, on the pages as on the API, and a line in the log.
WORKFLOW_STATUSES = {RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION}
NAMESPACE_NOT_FOUND_DETAIL = "temporal.api.errordetails.v1.NamespaceNotFoundFailure"
# The web tier's calls ride out a lost connection (a server restarting, a proxy failing over) for
# 3 s, then answer 503. The SDK's default, 10 s, equals TEMPORAL_REQUEST_TIMEOUT: with the server
# gone every request held a thread for the whole bound, and gunicorn's few threads filled up
# until requests that never touch Temporal waited behind them. The worker keeps the default.
WEB_RETRY_CONFIG = RetryConfig(max_interval_millis=1000, max_elapsed_time_millis=3000)


class TemporalUnavailable(Unavailable):
    """Temporal, or a worker behind it, did not answer in time."""

    code = "temporal_unavailable"
    # A server restarting or a worker being replaced is back within seconds, not half a minute.
    retry_after = 5


class TemporalConnectFailed(RuntimeError):
    """Connecting to Temporal failed. str() says why in one line, and which setting to check.

    A RuntimeError, as the SDK's own connect failure is, so callers that retry on that still do.
    """


def temporal_data_converter() -> DataConverter:
    """The data converter shared by the web tier and the worker; encrypting when a key is set.

    With encryption on, failure messages and stack traces move into the encrypted attributes
    too, so neither payloads nor error texts reach the Temporal server in the clear.
    """
    codec = encryption_codec_from_settings()
    if codec is None:
        return DataConverter.default
    return DataConverter(
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def temporal_connect_config() -> ClientConnectConfig:
    """`Client.connect`'s connection arguments from the settings, by the SDK's own rules (an API
    key turns TLS on unless TLS is explicitly off). Reads the certificate files named."""
    return ClientConfigProfile(
        address=settings.TEMPORAL_ADDRESS,
        namespace=settings.TEMPORAL_NAMESPACE,
        api_key=settings.TEMPORAL_API_KEY or None,
        tls=settings.TEMPORAL_TLS,
        grpc_meta=settings.TEMPORAL_GRPC_META,
    ).to_client_connect_config()


async def temporal_connect(
    *, runtime: Runtime | None = None, retry_config: RetryConfig | None = None
) -> Client:
    """Connect to the Temporal server named in the settings; raise TemporalConnectFailed.

    `retry_config` bounds how long a call retries a lost connection (the SDK's default: 10 s).
    """
    address = settings.TEMPORAL_ADDRESS
    try:
        config = temporal_connect_config()
    except OSError as exc:
        raise TemporalConnectFailed(
            f"Cannot connect to Temporal at {address}: cannot read {exc.filename}: "
            f"{exc.strerror} (check the TEMPORAL_TLS_* paths)"
        ) from exc
    try:
        return await Client.connect(
            **config,
            data_converter=temporal_data_converter(),
            runtime=runtime,
            **({"retry_config": retry_config} if retry_config else {}),
        )
    except RuntimeError as exc:  # the SDK's "Failed client connect: <the Rust error>"
        raise TemporalConnectFailed(connect_failure_describe(str(exc), address=address)) from exc
    except (ValueError, TypeError) as exc:  # connection arguments the SDK refuses outright
        raise TemporalConnectFailed(f"Cannot connect to Temporal at {address}: {exc}") from exc


_GRPC_STATUS = re.compile(r'Status \{ code: (\w+), message: "((?:[^"\\]|\\.)*)"')
_CERTIFICATE_PROBLEM = re.compile(r"InvalidCertificate\((\w+)")
_CLIENT_CERTIFICATE_PROBLEMS = (
    "PrivateKeyParseError",
    "NoCertificatesPresented",
    "InconsistentKeys",
)


def connect_failure_describe(error: str, *, address: str) -> str:
    """One line for a failed `Client.connect`: what went wrong, and what to check.

    The SDK gives the failure only as the text of its Rust error; the usual causes are
    recognised in it, and anything else is passed on as it is.
    """
    where = f"Temporal at {address}"
    if status := _GRPC_STATUS.search(error):
        code, message = status.groups()
        words = re.sub(r"(?<!^)(?=[A-Z])", " ", code).lower()
        if code in ("PermissionDenied", "Unauthenticated"):
            return f"{where} refused the connection: {words}: {message} {_credentials_hint()}"
        return f"{where} answered {words}: {message}"
    if certificate := _CERTIFICATE_PROBLEM.search(error):
        return (
            f"{where} sent a TLS certificate we do not accept: {certificate.group(1)} "
            "(check TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_NAME)"
        )
    if "InvalidContentType" in error:
        return f"{where} does not answer in TLS (check TEMPORAL_TLS and TEMPORAL_ADDRESS)"
    if any(problem in error for problem in _CLIENT_CERTIFICATE_PROBLEMS):
        return (
            f"Cannot connect to {where}: the TLS client certificate or key is unusable "
            "(check TEMPORAL_TLS_CLIENT_CERT_* and TEMPORAL_TLS_CLIENT_KEY_*)"
        )
    if "ConnectionRefused" in error:
        return (
            f"Cannot connect to {where}: connection refused (is it running? check TEMPORAL_ADDRESS)"
        )
    if "dns error" in error:
        return f"Cannot connect to {where}: the host name does not resolve (check TEMPORAL_ADDRESS)"
    return f"Cannot connect to {where}: {error.removeprefix('Failed client connect: ')}"


def _credentials_hint() -> str:
    """Which credentials a refusal is about: the ones configured, or that there are none."""
    tls = settings.TEMPORAL_TLS
    if settings.TEMPORAL_API_KEY:
        return "(check TEMPORAL_API_KEY)"
    if tls is not None and tls.client_cert is not None:
        return (
            "(check the client certificate: TEMPORAL_TLS_CLIENT_CERT_*, TEMPORAL_TLS_CLIENT_KEY_*)"
        )
    return (
        "(it wants credentials: set TEMPORAL_API_KEY, or a client certificate in "
        "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
    )


class TemporalGateway:
    """One Temporal client per process, on its own event loop thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[Hashable, Client] = {}
        self._connect_lock: asyncio.Lock | None = None

    def call(
        self, operation: Callable[[Client], Awaitable[T]], *, timeout: float | None = None
    ) -> T:
        """Run `operation(client)` on the gateway's loop; raise TemporalUnavailable past `timeout`.

        The bound covers connecting too. Temporal's answers about the workflow (an update
        rejected, a run not found or closed) pass through unchanged; any other RPC error, and
        an answer sealed with a key this process does not hold, is TemporalUnavailable.
        """
        bound = settings.TEMPORAL_REQUEST_TIMEOUT if timeout is None else timeout
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(self._run(operation), bound), self._ensure_loop()
        )
        try:
            return future.result(bound + 1)
        except (TimeoutError, FutureTimeoutError) as exc:
            future.cancel()
            raise TemporalUnavailable(f"Temporal did not answer within {bound:g} s.") from exc
        except PayloadDecryptionError as exc:
            # Its sender holds a key this process lacks: a rotation half done (see the README).
            logger.error("An answer from Temporal could not be decrypted: %s", exc)
            raise TemporalUnavailable("An answer from Temporal could not be decrypted.") from exc
        except RPCError as exc:
            if exc.status in UNAVAILABLE_STATUSES:
                # The SDK's words ("tcp connect error") are for the log, not for clients.
                logger.warning("Temporal is unavailable: %s", exc.message)
                raise TemporalUnavailable("Temporal is unavailable.") from exc
            if exc.status in REFUSED_STATUSES:
                words = exc.status.name.replace("_", " ").lower()
                logger.warning(
                    "Temporal at %s refused a call: %s: %s %s",
                    settings.TEMPORAL_ADDRESS,
                    words,
                    exc.message,
                    _credentials_hint(),
                )
                raise TemporalUnavailable(f"Temporal refused the call: {words}.") from exc
            if exc.status in WORKFLOW_STATUSES and not _namespace_not_found(exc):
                raise
            logger.error("Temporal refused a call: %s (%s)", exc.message, exc.status.name)
            raise TemporalUnavailable("Temporal refused the call.") from exc

    def close(self) -> None:
        """Forget every client; the next call connects afresh."""
        with self._lock:
            self._clients.clear()

    async def _run(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        return await operation(await self._client())

    async def _client(self) -> Client:
        key = _connection_key()
        client = self._clients.get(key)
        if client is not None:
            return client
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            client = self._clients.get(key)
            if client is None:
                address = settings.TEMPORAL_ADDRESS
                try:
                    client = await temporal_connect(retry_config=WEB_RETRY_CONFIG)
                except TemporalConnectFailed as exc:
                    logger.warning("%s", exc)
                    raise TemporalUnavailable(f"Cannot connect to Temporal at {address}.") from exc
                self._clients[key] = client
                logger.info(
                    "Connected to Temporal at %s, namespace %s",
                    address,
                    settings.TEMPORAL_NAMESPACE,
                )
        return client

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="temporal-gateway", daemon=True
                )
                thread.start()
                self._loop = loop
            return self._loop


def _namespace_not_found(exc: RPCError) -> bool:
    """Whether `exc` says the namespace itself is unknown: not found, but no workflow's answer."""
    return any(d.type_url.endswith(NAMESPACE_NOT_FOUND_DETAIL) for d in exc.grpc_status.details)


def _connection_key() -> Hashable:
    """Every setting a connection depends on: change one, and the gateway connects afresh."""
    return (
        settings.TEMPORAL_ADDRESS,
        settings.TEMPORAL_NAMESPACE,
        settings.TEMPORAL_API_KEY,
        settings.TEMPORAL_TLS,
        tuple(sorted(settings.TEMPORAL_GRPC_META.items())),
    )


gateway = TemporalGateway()
