"""The gRPC server lifecycle both model services share: health and reflection registration, model
loading after the port is open (health stays NOT_SERVING until it finishes), and graceful SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sdg.grpc_limits import MESSAGE_SIZE_OPTIONS

log = logging.getLogger(__name__)



def create_server(
    listen: str,
    register: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Builds a server with the service registered by `register`, plus Health (every service
    NOT_SERVING until `mark_serving`) and reflection. Returns the server, the bound port (so tests
    can listen on port 0) and the health servicer."""
    server = grpc.aio.server(options=MESSAGE_SIZE_OPTIONS)
    register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    port = server.add_insecure_port(listen)
    if port == 0:
        raise RuntimeError(f"could not listen on {listen}")
    return server, port, health_servicer


async def set_serving(health_servicer: health.aio.HealthServicer, names: Sequence[str], serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *names):
        await health_servicer.set(name, status)


async def serve(
    server: grpc.aio.Server,
    health_servicer: health.aio.HealthServicer,
    service_names: Sequence[str],
    load: Callable[[], Awaitable[None]],
    grace_s: float = 10.0,
) -> None:
    """Starts the server, runs `load` (the model) while health says NOT_SERVING, flips health to
    SERVING, and on SIGTERM/SIGINT stops taking calls and lets running ones finish for `grace_s`."""
    await set_serving(health_servicer, service_names, False)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    load_task = asyncio.create_task(load())
    stop_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({load_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    if load_task in done:
        load_task.result()  # a failed load ends the process loudly
        await set_serving(health_servicer, service_names, True)
        log.info("model loaded; serving")
        await stop_task
    else:
        load_task.cancel()
    log.info("shutting down (grace %.0fs)", grace_s)
    await set_serving(health_servicer, service_names, False)
    await server.stop(grace_s)
