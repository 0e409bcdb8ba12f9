"""ModelServiceMetrics: what each model service exports for Prometheus on a port of its own
(SDG_METRICS_PORT), in a registry of its own so that tests can build several in one process.
The engine reports batches, steps and its wait for the model; the servicer how calls end."""

from __future__ import annotations

import logging
from typing import Annotated

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from pydantic import BeforeValidator, Field

log = logging.getLogger(__name__)

# SDG_METRICS_PORT: a port, or 0 or empty for none.
MetricsPort = Annotated[int, BeforeValidator(lambda value: 0 if value == "" else value), Field(ge=0, le=65535)]
OCCUPANCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)
WAIT_BUCKETS = (0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
# How a call ended: the engine ran it to its end (partial or not), refused its request, failed
# part-way, was stopped by its caller, or found the model still loading.
OUTCOMES = ("completed", "invalid", "failed", "cancelled", "unavailable")


class ModelServiceMetrics:
    """Metrics named sdg_<service>_*: `made` is what a call produces ("rows", "images"), `step`
    what its loop steps through ("decode", "denoise")."""

    def __init__(self, service: str, made: str, step: str):
        self.registry = CollectorRegistry()
        prefix, registry = f"sdg_{service}", self.registry
        self.batch_occupancy = Histogram(
            f"{prefix}_batch_occupancy", f"{made.capitalize()} in each batch over the batch size", buckets=OCCUPANCY_BUCKETS, registry=registry
        )
        self.steps = Counter(f"{prefix}_{step}_steps", f"{step.capitalize()} steps run; rate() is steps per second", registry=registry)
        self.steps_per_second = Gauge(f"{prefix}_{step}_steps_per_second", f"{step.capitalize()} steps per second of the last batch", registry=registry)
        self.model_wait = Histogram(
            f"{prefix}_model_wait_seconds", "How long a call waited for the model, busy with earlier calls", buckets=WAIT_BUCKETS, registry=registry
        )
        self.made = Counter(f"{prefix}_{made}", f"{made.capitalize()} generated", registry=registry)
        self.calls = Counter(f"{prefix}_calls", "Generate calls by how they ended", ["outcome"], registry=registry)
        for outcome in OUTCOMES:
            self.calls.labels(outcome)

    def batch(self, items: int, capacity: int) -> None:
        self.batch_occupancy.observe(items / capacity)

    def stepped(self, steps: int, seconds: float) -> None:
        """`steps` steps of one batch, run in `seconds`."""
        self.steps.inc(steps)
        if steps and seconds > 0:
            self.steps_per_second.set(steps / seconds)

    def call_ended(self, outcome: str) -> None:
        self.calls.labels(outcome).inc()

    def serve(self, port: int) -> None:
        """Serves /metrics on `port` from a daemon thread; 0 serves nothing."""
        if port:
            start_http_server(port, registry=self.registry)
            log.info("metrics on port %d", port)


def text_metrics() -> ModelServiceMetrics:
    return ModelServiceMetrics("text", "rows", "decode")


def image_metrics() -> ModelServiceMetrics:
    return ModelServiceMetrics("image", "images", "denoise")
