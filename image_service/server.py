"""The image service process: a grpc.aio server (health, reflection, SIGTERM via sdg.serving)
whose model loads after the port is open."""

from __future__ import annotations

import asyncio
import logging
import os

import grpc
from grpc_health.v1 import health

from image_service.engine import ImageEngine
from image_service.model import unloaded_info
from image_service.servicer import SERVICE_NAME, ImageServicer
from image_service.settings import ImageSettings
from sdg import serving
from sdg.env import warn_about_unread_variables
from sdg.service_metrics import ModelServiceMetrics, image_metrics
from sdg.v1 import image_pb2_grpc

log = logging.getLogger(__name__)


def create_server(
    settings: ImageSettings, metrics: ModelServiceMetrics | None = None
) -> tuple[grpc.aio.Server, int, ImageServicer, health.aio.HealthServicer]:
    """The server (not started) on settings.listen (port 0 picks a free one), its port, its
    servicer (an engine is attached once loaded) and the health servicer."""
    servicer = ImageServicer(unloaded_info(settings), metrics or image_metrics())
    server, port, health_servicer = serving.create_server(
        settings.listen,
        lambda server: image_pb2_grpc.add_ImageServiceServicer_to_server(servicer, server),
        [SERVICE_NAME],
    )
    return server, port, servicer, health_servicer


async def run(settings: ImageSettings) -> None:
    metrics = image_metrics()
    server, port, servicer, health_servicer = create_server(settings, metrics)
    metrics.serve(settings.metrics_port)
    log.info("image service listening on port %d; loading %s", port, settings.model)
    engine: ImageEngine | None = None

    async def load() -> None:
        nonlocal engine
        engine = await asyncio.to_thread(ImageEngine.from_settings, settings, metrics)
        servicer.attach(engine)
        log.info("loaded %s on %s (%s)", engine.info.display_name, engine.info.device, engine.info.dtype)

    try:
        await serving.serve(server, health_servicer, [SERVICE_NAME], load)
    finally:
        if engine is not None:
            # Off the event loop: a call cancelled at shutdown hands its last events to the loop
            # before its engine run ends, and close() waits for that run.
            await asyncio.to_thread(engine.close)


def main(settings: ImageSettings) -> None:
    """Run by `python -m image_service` once logging is set up."""
    warn_about_unread_variables(log, os.environ)
    asyncio.run(run(settings))
