"""The process's Temporal client. Used by the web process and the worker alike.

The worker connects with `temporal_connect()` inside its own event loop. The web tier, which is
synchronous, goes through `gateway`: one client per process, living on one background event
loop, reached with `gateway.call(...)`, which always has a time bound.
"""

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import TypeVar

from django.conf import settings
from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.service import RPCError, RPCStatusCode

from coffeeshop.errors import Unavailable
from coffeeshop.temporal.codec import encryption_codec_from_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNAVAILABLE_STATUSES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
}


class TemporalUnavailable(Unavailable):
    """Temporal, or a worker behind it, did not answer in time."""

    code = "temporal_unavailable"


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


async def temporal_connect() -> Client:
    """Connect to the Temporal server named in the settings."""
    return await Client.connect(
        settings.TEMPORAL_ADDRESS,
        namespace=settings.TEMPORAL_NAMESPACE,
        data_converter=temporal_data_converter(),
    )


class TemporalGateway:
    """One Temporal client per process, on its own event loop thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[tuple[str, str], Client] = {}
        self._connect_lock: asyncio.Lock | None = None

    def call(
        self, operation: Callable[[Client], Awaitable[T]], *, timeout: float | None = None
    ) -> T:
        """Run `operation(client)` on the gateway's loop; raise TemporalUnavailable past `timeout`.

        The bound covers connecting too. Errors that Temporal itself raises for the operation
        (an update rejected, a workflow not found) pass through unchanged.
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
        except RPCError as exc:
            if exc.status in UNAVAILABLE_STATUSES:
                raise TemporalUnavailable(f"Temporal is unavailable: {exc.message}") from exc
            raise

    def close(self) -> None:
        """Forget every client; the next call connects afresh."""
        with self._lock:
            self._clients.clear()

    async def _run(self, operation: Callable[[Client], Awaitable[T]]) -> T:
        return await operation(await self._client())

    async def _client(self) -> Client:
        key = (settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE)
        client = self._clients.get(key)
        if client is not None:
            return client
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            client = self._clients.get(key)
            if client is None:
                try:
                    client = await temporal_connect()
                except RuntimeError as exc:  # the SDK's "Failed client connect"
                    raise TemporalUnavailable(f"Cannot connect to Temporal at {key[0]}.") from exc
                self._clients[key] = client
                logger.info("Connected to Temporal at %s, namespace %s", *key)
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


gateway = TemporalGateway()
