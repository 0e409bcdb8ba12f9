"""Named dependencies for the routes: the objects the lifespan put on app.state, the caller's API
key, and a job the caller may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.admission import RequestRate
from gateway.clients import ServiceClients
from gateway.datasets import DatasetStore
from gateway.errors import JobNotFound, Unauthenticated
from gateway.jobs import Job, JobStore
from gateway.keys import ApiKey, KeyRing
from gateway.metrics import GatewayMetrics
from gateway.runner import JobRunner
from gateway.settings import GatewaySettings

# What a browser opens by URL (EventSource, <img>, a download link) cannot send a header: these
# routes also take the key as ?api_key=.
KEY_IN_URL_ROUTES = frozenset({"/jobs/{job_id}/events", "/jobs/{job_id}/files/{file_path:path}", "/jobs/{job_id}/archive"})
MISSING_KEY = "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"


def get_settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def get_store(request: Request) -> JobStore:
    return request.app.state.store


def get_datasets(request: Request) -> DatasetStore:
    return request.app.state.datasets


def get_runner(request: Request) -> JobRunner:
    return request.app.state.runner


def get_clients(request: Request) -> ServiceClients:
    return request.app.state.clients


def get_metrics(request: Request) -> GatewayMetrics:
    return request.app.state.metrics


def get_keys(request: Request) -> KeyRing:
    return request.app.state.keys


def get_request_rate(request: Request) -> RequestRate:
    return request.app.state.request_rate


SettingsDep = Annotated[GatewaySettings, Depends(get_settings)]
StoreDep = Annotated[JobStore, Depends(get_store)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
ClientsDep = Annotated[ServiceClients, Depends(get_clients)]
MetricsDep = Annotated[GatewayMetrics, Depends(get_metrics)]
KeysDep = Annotated[KeyRing, Depends(get_keys)]
RequestRateDep = Annotated[RequestRate, Depends(get_request_rate)]
# Declared as security schemes so that /docs can send a key.
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]
KeyHeaderDep = Annotated[str | None, Depends(APIKeyHeader(name="X-API-Key", auto_error=False))]


def get_caller(request: Request, keys: KeysDep, rate: RequestRateDep, settings: SettingsDep, bearer: BearerDep, header: KeyHeaderDep) -> ApiKey | None:
    """The API key the request presents, None while keys are off. Raises Unauthenticated for a
    missing or unknown key, LimitReached past the key's requests per minute."""
    secret = bearer.credentials if bearer is not None else header
    route = request.scope.get("route")
    if secret is None and request.method == "GET" and getattr(route, "path", None) in KEY_IN_URL_ROUTES:
        secret = request.query_params.get("api_key")
    key = keys.find(secret) if secret else None
    if key is None:
        if not keys.enabled():
            return None
        raise Unauthenticated(MISSING_KEY if not secret else "the API key is not known (revoked, or mistyped)")
    rate.admit(key, settings)
    return key


CallerDep = Annotated[ApiKey | None, Depends(get_caller)]


def get_owned_job(job_id: str, store: StoreDep, caller: CallerDep) -> Job:
    """The job, if the caller may see it: with keys on, only the key that made it may."""
    job = store.get(job_id)
    if caller is not None and job.owner != caller.key_id:
        raise JobNotFound(job_id)
    return job


OwnedJobDep = Annotated[Job, Depends(get_owned_job)]
