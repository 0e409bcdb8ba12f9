"""gRPC clients of the model services: one channel per replica, built in the app's lifespan and
kept on app.state. A `dns:///host:port` address (a Kubernetes headless Service) stands for every
address the name resolves to, looked up again every DISCOVERY_INTERVAL_S. Each replica's health
watch (Health.Watch) keeps its serving state current; jobs get serving replicas round-robin, and
the replica gauge of /metrics reads that state. Also the probes behind /health and GET /."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import ServiceFailure
from gateway.metrics import GatewayMetrics
from gateway.models import ModelDescription, ServiceReport, ServiceState
from gateway.settings import DNS_PREFIX, GatewaySettings
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
# A lost replica's health is watched again after this, doubling up to the most.
WATCH_RETRY_S, WATCH_RETRY_MAX_S = 0.5, 5.0
DISCOVERY_INTERVAL_S = 10.0

log = logging.getLogger(__name__)


async def resolve(addresses: list[str]) -> list[str]:
    """The addresses with each dns:///host:port replaced by the addresses its name resolves to
    now, in a stable order. A name that resolves to nothing stands for itself: gRPC resolves it
    again when the channel connects."""
    loop, found = asyncio.get_running_loop(), []
    for address in addresses:
        if not address.startswith(DNS_PREFIX):
            found.append(address)
            continue
        host, _, port = address.removeprefix(DNS_PREFIX).rpartition(":")
        try:
            infos = await loop.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
        except (socket.gaierror, ValueError) as err:
            log.warning("%s does not resolve now (%s); trying it as it is", address, err)
            found.append(address)
            continue
        ips = sorted({info[4][0] for info in infos})
        found += [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip in ips]
    return list(dict.fromkeys(found))


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
    # What the health watch last saw; None until it has seen anything.
    health_state: ServiceState | None = None

    @property
    def label(self) -> str:
        return f"{self.kind} service at {self.address}"

    @property
    def serving(self) -> bool:
        """The health watch's word, or before it has one, the last probe's."""
        if self.health_state is not None:
            return self.health_state == "serving"
        return self.report is not None and self.report.status == "serving"

    async def watch_health(self) -> None:
        """Keeps `health_state` current until cancelled. A broken watch (the replica is down) is
        opened again with backoff, so a restarted replica serves jobs again unasked. The stream is
        left open only while the replica serves: a replica shutting down waits out its grace for
        the calls still open, and a watch must not be one."""
        retry_s = WATCH_RETRY_S
        while True:
            call = self.health.Watch(health_pb2.HealthCheckRequest(service=""))
            try:
                async for reply in call:
                    if reply.status != health_pb2.HealthCheckResponse.SERVING:
                        self.health_state, retry_s = "not_serving", WATCH_RETRY_S  # loading, or stopping
                        break
                    self.health_state, retry_s = "serving", WATCH_RETRY_S
            except grpc.aio.AioRpcError as err:
                self.health_state = "unavailable"
                self.metrics.grpc_errors.labels(self.kind, err.code().name).inc()
            finally:
                call.cancel()
            await asyncio.sleep(retry_s)
            retry_s = min(2 * retry_s, WATCH_RETRY_MAX_S)

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
    """All replicas of one service; `next()` hands them out round-robin, one per job."""

    kind: ServiceKind
    # As configured: host:port or dns:///host:port each.
    addresses: list[str]
    endpoints: list[ServiceEndpoint[Stub]]
    _turn: int = field(default=0, init=False, repr=False)

    def next(self, avoid: str | None = None) -> ServiceEndpoint[Stub]:
        """The next serving replica in turn, other than `avoid` (the one a job just lost) where
        another serves. With none known to serve, the next in turn: a job waits for it to start."""
        self._turn %= len(self.endpoints)  # discovery may have dropped some since
        turn = self.endpoints[self._turn :] + self.endpoints[: self._turn]
        chosen = min(turn, key=lambda e: (not e.serving, e.address == avoid))  # min keeps the first of equals
        self._turn = (self.endpoints.index(chosen) + 1) % len(self.endpoints)
        return chosen

    def serving_with(self, first: ServiceEndpoint[Stub]) -> list[ServiceEndpoint[Stub]]:
        """`first`, then every other replica that serves: where a job's shards go."""
        return [first, *(e for e in self.endpoints if e.serving and e is not first)]


@dataclass
class ServiceClients:
    text: ServicePool[text_pb2_grpc.TextServiceStub]
    image: ServicePool[image_pb2_grpc.ImageServiceStub]
    metrics: GatewayMetrics
    # Every replica ever found, by (kind, address): one dropped from DNS keeps its channel, so the
    # jobs it still streams go on, and it is used again if it comes back.
    _made: dict[tuple[ServiceKind, str], ServiceEndpoint] = field(default_factory=dict, init=False, repr=False)
    _watches: dict[tuple[ServiceKind, str], asyncio.Task] | None = field(default=None, init=False, repr=False)
    _discovery: asyncio.Task | None = field(default=None, init=False, repr=False)

    @classmethod
    def connect(cls, settings: GatewaySettings, metrics: GatewayMetrics) -> ServiceClients:
        """Creates a channel per configured address; gRPC connects lazily, so this never blocks on a
        service. discover() then expands the dns:/// ones."""
        clients = cls(
            text=ServicePool("text", settings.text_service_addrs, []),
            image=ServicePool("image", settings.image_service_addrs, []),
            metrics=metrics,
        )
        for pool in clients.pools:
            pool.endpoints = [clients._endpoint(pool.kind, address) for address in pool.addresses]
        return clients

    @property
    def pools(self) -> tuple[ServicePool, ServicePool]:
        return self.text, self.image

    def _endpoint(self, kind: ServiceKind, address: str) -> ServiceEndpoint:
        if (kind, address) not in self._made:
            channel = grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)
            make_stub = text_pb2_grpc.TextServiceStub if kind == "text" else image_pb2_grpc.ImageServiceStub
            health = health_pb2_grpc.HealthStub(channel)
            self._made[kind, address] = ServiceEndpoint(kind, address, channel, make_stub(channel), health, self.metrics)
        return self._made[kind, address]

    def watch(self) -> None:
        """Starts the replicas' health watches and the discovery of dns:/// addresses' replicas;
        close() stops both."""
        self._watches = {}
        self._sync_watches()
        self._discovery = asyncio.create_task(self.keep_discovering(), name="sdg-discovery")

    def _sync_watches(self) -> None:
        if self._watches is None:
            return
        current = {(e.kind, e.address): e for e in self.endpoints}
        for key in [key for key in self._watches if key not in current]:
            self._watches.pop(key).cancel()
            self._made[key].health_state = None  # unwatched now, its word would go stale
        for key, endpoint in current.items():
            if key not in self._watches:
                self._watches[key] = asyncio.create_task(endpoint.watch_health(), name=f"sdg-watch-{endpoint.address}")

    async def discover(self) -> None:
        """Looks up the dns:/// addresses again: replicas that appeared get jobs, ones that went
        get no new ones."""
        for pool in self.pools:
            found = await resolve(pool.addresses)
            before = [e.address for e in pool.endpoints]
            if found != before:
                log.info("%s service replicas: %s (were %s)", pool.kind, ",".join(found), ",".join(before))
                pool.endpoints = [self._endpoint(pool.kind, address) for address in found]
        self._sync_watches()

    async def keep_discovering(self) -> None:
        """discover(), every DISCOVERY_INTERVAL_S, while any address is a dns:/// name."""
        if not any(a.startswith(DNS_PREFIX) for pool in self.pools for a in pool.addresses):
            return
        while True:
            await self.discover()
            await asyncio.sleep(DISCOVERY_INTERVAL_S)

    @property
    def endpoints(self) -> list[ServiceEndpoint]:
        return [*self.text.endpoints, *self.image.endpoints]

    async def confirm_schema(self, schema: dict, timeout: float) -> None:
        """Asks a text service to compile the schema's grammar, which can reject what the door check
        passed (a regex the grammar compiler cannot read, say): INVALID_ARGUMENT becomes a
        ServiceFailure with status 400. A service that cannot answer now is not an input error;
        the job reports it when it runs."""
        endpoint = next((e for e in self.text.endpoints if e.serving), self.text.endpoints[0])
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
        """Probes again the addresses whose health watch has no word yet and whose last probe is
        older than `max_age_s`, or missing."""
        now = time.monotonic()
        stale = [e for e in self.endpoints if e.health_state is None and (e.reported_at is None or now - e.reported_at > max_age_s)]
        await asyncio.gather(*(endpoint.probe(timeout) for endpoint in stale))

    async def close(self) -> None:
        watches = [*(self._watches or {}).values(), *([self._discovery] if self._discovery else [])]
        for watch in watches:
            watch.cancel()
        await asyncio.gather(*watches, return_exceptions=True)
        await asyncio.gather(*(endpoint.channel.close() for endpoint in self._made.values()))
