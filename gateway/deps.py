"""Named dependencies for the routes: the objects the lifespan put on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.clients import ServiceClients
from gateway.jobs import JobStore
from gateway.metrics import GatewayMetrics
from gateway.runner import JobRunner
from gateway.settings import GatewaySettings


def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_runner(request: Request) -> JobRunner:
    return request.app.state.runner


def get_clients(request: Request) -> ServiceClients:
    return request.app.state.clients


def get_metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
ClientsDep = Annotated[ServiceClients, Depends(get_clients)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]
