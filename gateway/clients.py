"""gRPC clients of the model services: one channel per configured address, picked round-robin per
job, built in the app's lifespan and kept on app.state. Also the probes behind /health, GET / and
the replica gauge of /metrics, which reads each address's last probe."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import ServiceFailure
from gateway.metrics import GatewayMetrics
from gateway.models import ModelDescription, ServiceReport
from gateway.settings import GatewaySettings
from sdg.grpc_limits import MESSAGE_SIZE_OPTIONS
from sdg.v1 import common_pb2, image_pb2_grpc, text_pb2, text_pb2_grpc

ServiceKind = Literal["text", "image"]
Stub = TypeVar("Stub", text_pb2_grpc.TextServiceStub, image_pb2_grpc.ImageServiceStub)

CHANNEL_OPTIONS = [
    *MESSAGE_SIZE_OPTIONS,
    # gRPC's default reconnect backoff grows to two minutes, during which every call fails fast with
    # UNAVAILABLE; a restarted service should be usable again within seconds.
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 3000),
]


def model_description(info: common_pb2.ModelInfo) -> ModelDescription:
    return ModelDescription(
        model_id=info.model_id,
        display_name=info.display_name or info.model_id,
        source=info.source,
        demo_model=info.demo_model,
        loaded=info.loaded,
        device=info.device,
        dtype=info.dtype,
    )


@dataclass
class ServiceEndpoint(Generic[Stub]):
    """One address of one service, with its channel and stubs."""

    kind: ServiceKind
    address: str
    channel: grpc.aio.Channel
    stub: Stub
    health: health_pb2_grpc.HealthStub
    metrics: GatewayMetrics
    # The last probe's report and when it came (time.monotonic()); None before the first.
    report: ServiceReport | None = None
    reported_at: float | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} service at {self.address}"

    @property
    def serving(self) -> bool:
        return self.report is not None and self.report.status == "serving"

    async def model_info(self, timeout: float) -> ModelDescription:
        """The loaded model; raises grpc.aio.AioRpcError when the service does not answer."""
        with self.metrics.grpc_call(self.kind, "GetModelInfo"):
            reply = await self.stub.GetModelInfo(common_pb2.GetModelInfoRequest(), timeout=timeout)
        return model_description(reply)

    async def probe(self, timeout: float) -> ServiceReport:
        """Health check plus model info, each bounded by `timeout`; never raises for a down service."""
        self.report, self.reported_at = await self._probe(timeout), time.monotonic()
        return self.report

    async def _probe(self, timeout: float) -> ServiceReport:
        try:
            with self.metrics.grpc_call(self.kind, "Health.Check"):
                health = await self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
            model = await self.model_info(timeout)
        except grpc.aio.AioRpcError as err:
            return ServiceReport(
                kind=self.kind, address=self.address, status="unavailable", error=f"{err.code().name}: {err.details()}"
            )
        serving = health.status == health_pb2.HealthCheckResponse.SERVING
        return ServiceReport(
            kind=self.kind,
            address=self.address,
            status="serving" if serving else "not_serving",
            model=model,
            error=None if serving else "health check: " + health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
        )


@dataclass
class ServicePool(Generic[Stub]):
    """All addresses of one service; `next()` hands them out round-robin, one per job."""

    endpoints: list[ServiceEndpoint[Stub]]
    _turn: itertools.cycle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(self.endpoints)

    def next(self) -> ServiceEndpoint[Stub]:
        return next(self._turn)


@dataclass
class ServiceClients:
    text: ServicePool[text_pb2_grpc.TextServiceStub]
    image: ServicePool[image_pb2_grpc.ImageServiceStub]

    @classmethod
    def connect(cls, settings: GatewaySettings, metrics: GatewayMetrics) -> ServiceClients:
        """Creates the channels; gRPC connects lazily, so this never blocks on a service."""

        def pool(kind: ServiceKind, addresses: list[str], make_stub) -> ServicePool:
            endpoints = []
            for address in addresses:
                channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
                health = health_pb2_grpc.HealthStub(channel)
                endpoints.append(ServiceEndpoint(kind, address, channel, make_stub(channel), health, metrics))
            return ServicePool(endpoints)

        return cls(
            text=pool("text", settings.text_service_addrs, text_pb2_grpc.TextServiceStub),
            image=pool("image", settings.image_service_addrs, image_pb2_grpc.ImageServiceStub),
        )

    @property
    def endpoints(self) -> list[ServiceEndpoint]:
        return [*self.text.endpoints, *self.image.endpoints]

    async def confirm_schema(self, schema: dict, timeout: float) -> None:
        """Asks a text service to compile the schema's grammar, which can reject what the door check
        passed (a regex the grammar compiler cannot read, say): INVALID_ARGUMENT becomes a
        ServiceFailure with status 400. A service that cannot answer now is not an input error;
        the job reports it when it runs."""
        endpoint = self.text.endpoints[0]
        request = text_pb2.ValidateSchemaRequest(schema_json=json.dumps(schema))
        try:
            with endpoint.metrics.grpc_call("text", "ValidateSchema"):
                await endpoint.stub.ValidateSchema(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise ServiceFailure.from_rpc_error("text", endpoint.address, err) from None

    async def probe_all(self, timeout: float) -> list[ServiceReport]:
        return list(await asyncio.gather(*(endpoint.probe(timeout) for endpoint in self.endpoints)))

    async def probe_stale(self, max_age_s: float, timeout: float) -> None:
        """Probes again the addresses whose last probe is older than `max_age_s`, or missing."""
        now = time.monotonic()
        stale = [e for e in self.endpoints if e.reported_at is None or now - e.reported_at > max_age_s]
        await asyncio.gather(*(endpoint.probe(timeout) for endpoint in stale))

    async def close(self) -> None:
        await asyncio.gather(*(endpoint.channel.close() for endpoint in self.endpoints))
