"""GatewayMetrics: every metric GET /metrics exports, in a registry of its own (a test process may
run several gateways). Counters and histograms are fed by the stream consumers, the service
clients and the HTTP middleware; jobs and replicas are read from the job store and the clients'
health watches when scraped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, get_args

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.errors import ServiceFailure
from gateway.models import JobState, ShardState

if TYPE_CHECKING:
    from gateway.clients import ServiceClients
    from gateway.jobs import JobStore

JOB_STATES: tuple[str, ...] = get_args(JobState)
SHARD_STATES: tuple[str, ...] = get_args(ShardState)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Streaming calls last as long as a job's rows or images take; probes take milliseconds.
GRPC_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 14400)
# The calls the gateway makes of each service, whose series exist from the start.
GRPC_METHODS = {
    "text": ("Health.Check", "GetModelInfo", "ValidateSchema", "GenerateRows"),
    "image": ("Health.Check", "GetModelInfo", "GenerateImages"),
}


# How a shard's attempt ends: all its rows, fewer (the service stopped it short), lost (its
# replica went away; the shard goes to another), or stopped (a cancel, a shutdown, a failure).
SHARD_OUTCOMES = ("completed", "partial", "lost", "stopped")



class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.rows = Counter("sdg_rows", "Rows the text services streamed to jobs", registry=registry)
        self.images = Counter("sdg_images", "Images the image services streamed to jobs", registry=registry)
        self.grpc_errors = Counter("sdg_grpc_errors", "gRPC calls to the model services that failed, by status code", ["kind", "code"], registry=registry)
        self.grpc_latency = Histogram(
            "sdg_grpc_call_seconds", "gRPC calls to the model services, start to end", ["kind", "method"], buckets=GRPC_BUCKETS, registry=registry
        )
        for kind, methods in GRPC_METHODS.items():
            for method in methods:
                self.grpc_latency.labels(kind, method)
        self.failovers = Counter("sdg_failovers", "Jobs resumed on another replica after theirs went away mid-stream", ["kind"], registry=registry)
        for kind in GRPC_METHODS:
            self.failovers.labels(kind)
        # Shards of rows a job spreads over replicas (gateway/shards.py).
        self.shards_running = Gauge("sdg_shards_running", "Shards of jobs' rows being made now", registry=registry)
        self.shards = Counter("sdg_shards", "Attempts at shards of jobs' rows that ended, by how", ["outcome"], registry=registry)
        for outcome in SHARD_OUTCOMES:
            self.shards.labels(outcome)
        self.http_latency = Histogram(
            "sdg_http_request_seconds", "HTTP requests by route template", ["method", "route"], buckets=HTTP_BUCKETS, registry=registry
        )

    @contextmanager
    def grpc_call(self, kind: str, method: str) -> Iterator[None]:
        """Times the call made in the block and counts the gRPC error it ends with."""
        began = time.perf_counter()
        try:
            yield
        except grpc.aio.AioRpcError as err:
            self.grpc_errors.labels(kind, err.code().name).inc()
            raise
        except ServiceFailure as err:  # a stream the gateway gave up on (DEADLINE_EXCEEDED)
            if err.code is not None:
                self.grpc_errors.labels(kind, err.code.name).inc()
            raise
        finally:
            self.grpc_latency.labels(kind, method).observe(time.perf_counter() - began)

    def exposition(self, store: JobStore, clients: ServiceClients) -> bytes:
        """The Prometheus text format of everything, jobs and replicas as they are now."""
        return generate_latest(_Scrape(self.registry, store, clients))


class _Scrape(Collector):
    def __init__(self, registry: CollectorRegistry, store: JobStore, clients: ServiceClients):
        self.registry, self.store, self.clients = registry, store, clients

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from job_families(self.store)
        yield from replica_families(self.clients)


def job_families(store: JobStore) -> Iterator[Metric]:
    counts = store.counts()
    jobs = GaugeMetricFamily("sdg_jobs", "Jobs in the job database, by state", labels=["state"])
    for state in JOB_STATES:
        jobs.add_metric([state], counts.get(state, 0))
    yield jobs
    yield GaugeMetricFamily("sdg_queue_depth", "Jobs queued for a service slot", value=counts.get("queued", 0))
    shard_counts = store.shard_counts()
    shards = GaugeMetricFamily("sdg_shards_by_state", "Shards of jobs' runs in the job database, by state", labels=["state"])
    for state in SHARD_STATES:
        shards.add_metric([state], shard_counts.get(state, 0))
    yield shards


def replica_families(clients: ServiceClients) -> Iterator[Metric]:
    up = GaugeMetricFamily("sdg_replica_up", "1 when the replica's health watch (or, before its first word, a probe) finds it serving, else 0", labels=["kind", "address"])
    for endpoint in clients.endpoints:
        up.add_metric([endpoint.kind, endpoint.address], 1 if endpoint.serving else 0)
    yield up


class RequestTimer:
    """ASGI middleware: each HTTP request's latency by method and route template ("unmatched"
    for a path no route serves, so that stray paths cannot grow the label set)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.http_latency.labels(scope["method"], route).observe(time.perf_counter() - began)
