"""create_app(settings): the FastAPI application. Its lifespan opens the job database, opens the gRPC
channels and starts the job runner, its lease heartbeat and the replicas' health watches (all kept
on app.state), taking over the jobs a dead gateway left unfinished; at shutdown it stops running
jobs (recorded as interrupted), gives up its leases and closes the channels."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from gateway.admission import RequestRate
from gateway.clients import ServiceClients
from gateway.datasets import DatasetStore
from gateway.deps import get_caller
from gateway.errors import install_exception_handlers
from gateway.jobs import JobStore
from gateway.keys import KeyRing
from gateway.metrics import GatewayMetrics, RequestTimer
from gateway.routes import datasets, events, generate, health, jobs, metrics, root
from gateway.runner import JobRunner
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

API_NAME = "Synthetic Data Generator (SDG)"
API_VERSION = "2.0.0"
API_DESCRIPTION = (
    "Schema-driven tabular data from an LLM, prompt-driven image datasets from Stable Diffusion, "
    "or both paired row by row. Jobs run in the background; poll /status/{job_id}."
)


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore.open(settings.database_url, settings.output_dir, settings.progress_write_interval_s, settings.leases)
        clients = ServiceClients.connect(settings, app.state.metrics)
        clients.watch()  # stopped by clients.close()
        runner = JobRunner(settings, store, clients)
        app.state.store, app.state.clients, app.state.runner = store, clients, runner
        runner.take_over(*store.load())
        app.state.keys = KeyRing(store.engine, settings.api_keys)
        app.state.datasets = DatasetStore(store.engine)
        heartbeat = asyncio.create_task(runner.keep_leases(), name="sdg-leases")
        log.info(
            "gateway ready: text service %s, image service %s, output in %s",
            ",".join(settings.text_service_addrs),
            ",".join(settings.image_service_addrs),
            settings.output_dir,
        )
        try:
            yield
        finally:
            heartbeat.cancel()
            await runner.shutdown()
            await clients.close()
            store.close()

    app = FastAPI(title=API_NAME, version=API_VERSION, description=API_DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = GatewayMetrics()
    app.state.request_rate = RequestRate()
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(RequestTimer, metrics=app.state.metrics)
    install_exception_handlers(app)
    # With API keys on, all but these need one; the UI's files under /ui are open too.
    open_routes = {root, health} | (set() if settings.metrics_require_key else {metrics})
    for module in (root, health, generate, datasets, jobs, events, metrics):
        app.include_router(module.router, dependencies=[] if module in open_routes else [Depends(get_caller)])
    if settings.frontend_dir.is_dir():
        app.mount("/ui", StaticFiles(directory=settings.frontend_dir, html=True), name="ui")
    else:
        log.warning("no frontend at %s; /ui is not served", settings.frontend_dir)
    return app
