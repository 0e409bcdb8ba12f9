"""How both model services stream a call: their engines take one call at a time (ModelLock) and
emit its events from blocking torch code, and stream_from_thread carries them from a worker
thread to the event loop of a grpc.aio servicer's server-streaming RPC."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any

import grpc

log = logging.getLogger(__name__)
Emit = Callable[[Any], None]
_DONE = object()
# How often a call waiting for its model says so (sdg.v1.Waiting), in both services: well inside
# any caller's patience for a silent stream.
WAITING_EVERY_S = 2.0


@dataclass(frozen=True)
class Waiting:
    """The call waits for the model, busy with earlier calls (sdg.v1.Waiting)."""

    waited_s: float


class ModelLock:
    """One call at a time on a model. `with lock:` takes it, waiting as long as it takes."""

    def __init__(self, on_waited: Callable[[float], None] = lambda seconds: None) -> None:
        self._lock = threading.Lock()
        # Hears how long each turn() waited, for the service's metrics.
        self._on_waited = on_waited

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    @contextmanager
    def turn(self, emit: Emit, cancelled: Callable[[], bool]) -> Iterator[bool]:
        """Holds the model for the block. While earlier calls hold it, emits Waiting at once and
        every WAITING_EVERY_S: without them a queued call's stream would be silent for as long as
        the calls ahead take, and its caller would give up on it. Yields False, holding nothing,
        when the call was cancelled while it waited."""
        holding = self._lock.acquire(blocking=False)
        began = time.perf_counter()
        while not holding:
            emit(Waiting(time.perf_counter() - began))
            if cancelled():
                break
            holding = self._lock.acquire(timeout=WAITING_EVERY_S)
        self._on_waited(time.perf_counter() - began)
        try:
            yield holding
        finally:
            if holding:
                self._lock.release()


async def stream_from_thread(work: Callable[[Emit, threading.Event], None], maxsize: int = 64) -> AsyncIterator[Any]:
    """Runs `work(emit, cancelled)` in a worker thread and yields, in order, each item it emits.
    If `work` raises, the exception is yielded as the last item: the caller decides whether that
    ends the stream with a status or with a last message.

    The queue is bounded, so a slow client slows the engine instead of piling up messages. When
    the consumer stops early (the client went away), closing this generator sets `cancelled`,
    which the engine checks every step, and drains the queue until the worker has returned. Use
    it under `contextlib.aclosing` so that happens at once rather than at garbage collection."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=maxsize)
    cancelled = threading.Event()

    def emit(item: Any) -> None:
        try:
            delivered = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        except RuntimeError:  # the loop is closed: the server shut down under this call
            cancelled.set()
            return
        while True:
            try:
                return delivered.result(timeout=1.0)
            except concurrent.futures.TimeoutError:
                # Nobody will read this: the consumer has gone (its queue is drained until the
                # worker returns, but a blocked loop cannot drain it), or the loop has stopped.
                if cancelled.is_set() or not loop.is_running():
                    delivered.cancel()
                    cancelled.set()
                    return

    def run() -> None:
        try:
            work(emit, cancelled)
        except BaseException as exc:  # handed to the event loop, which decides what it means
            emit(exc)
        finally:
            emit(_DONE)

    worker = loop.run_in_executor(None, run)
    try:
        while (item := await queue.get()) is not _DONE:
            yield item
    finally:
        # Reached on normal end, on error, and when the client cancels.
        cancelled.set()
        while not worker.done():
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.01)


async def engine_stream(
    context: grpc.aio.ServicerContext,
    work: Callable[[Emit, threading.Event], None],
    invalid: tuple[type[BaseException], ...],
    failure: Callable[[str], Any],
    name: str,  # the RPC, for the log
    on_end: Callable[[str], None],
) -> AsyncIterator[Any]:
    """What `work` emits (through stream_from_thread), for a servicer to convert and send. An
    engine checks its request before it emits anything: an `invalid` error then aborts the call
    with INVALID_ARGUMENT. Any other failure ends the stream with failure("Type: message"), a
    summary carrying that error: once a stream has started, what it sent stands, marked partial,
    rather than a new status. on_end hears how the call ended (sdg.service_metrics.OUTCOMES)."""
    sent, outcome = False, "cancelled"
    try:
        async with aclosing(stream_from_thread(work)) as items:
            async for item in items:
                if not isinstance(item, BaseException):
                    sent = True
                    yield item
                    continue
                if isinstance(item, invalid) and not sent:
                    outcome = "invalid"
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(item))
                log.error("%s failed", name, exc_info=item)
                outcome = "failed"
                yield failure(f"{type(item).__name__}: {item}")
                return
        outcome = "completed"
    except (GeneratorExit, asyncio.CancelledError):
        # Closing the stream has set the flag the engine checks every step.
        log.info("%s ended early by the client; the engine stops within one step", name)
        raise
    finally:
        on_end(outcome)
