"""Builds and runs the text service: TextService, Health and reflection on one grpc.aio server."""

from __future__ import annotations

import asyncio
import logging
import os

import grpc
from grpc_health.v1 import health

from sdg import serving
from sdg.env import warn_about_unread_variables
from sdg.service_metrics import ModelServiceMetrics, text_metrics
from sdg.v1 import text_pb2, text_pb2_grpc
from text_service.engine import TextEngine
from text_service.model import load_text_model, unloaded_info
from text_service.servicer import TextServicer
from text_service.settings import TextSettings

SERVICE_NAME = text_pb2.DESCRIPTOR.services_by_name["TextService"].full_name
log = logging.getLogger(__name__)


def create_server(
    settings: TextSettings, metrics: ModelServiceMetrics | None = None
) -> tuple[grpc.aio.Server, int, TextServicer, health.aio.HealthServicer]:
    """The server (not started) on settings.listen (port 0 picks a free one), its port, its
    servicer (an engine is attached once loaded) and the health servicer."""
    servicer = TextServicer(unloaded_info(settings), metrics or text_metrics())
    server, port, health_servicer = serving.create_server(
        settings.listen,
        lambda server: text_pb2_grpc.add_TextServiceServicer_to_server(servicer, server),
        [SERVICE_NAME],
    )
    return server, port, servicer, health_servicer


def load_engine(settings: TextSettings, metrics: ModelServiceMetrics | None = None) -> TextEngine:
    """The engine, ready to serve: on CUDA its compiled decode step is warmed up before the
    health check says SERVING."""
    engine = TextEngine(
        load_text_model(settings),
        batch_size=settings.batch_size,
        mask_threads=settings.mask_threads,
        feed_width=settings.feed_width,
        decode=settings.decode,
        max_rows=settings.max_rows,
        row_time_limit_s=settings.row_time_limit_s,
        metrics=metrics,
    )
    engine.warm_up()
    return engine


async def run(settings: TextSettings) -> None:
    metrics = text_metrics()
    server, port, servicer, health = create_server(settings, metrics)
    metrics.serve(settings.metrics_port)
    log.info("text service listening on %s (port %d), loading %s", settings.listen, port, settings.model)

    async def load() -> None:
        engine = await asyncio.to_thread(load_engine, settings, metrics)
        servicer.attach(engine)
        log.info("text model ready: %s", engine.info.display_name)

    await serving.serve(server, health, [SERVICE_NAME], load)


def main(settings: TextSettings) -> None:
    """Run by `python -m text_service` once logging is set up."""
    warn_about_unread_variables(log, os.environ)
    asyncio.run(run(settings))
