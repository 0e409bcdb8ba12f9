"""GET /metrics: the gateway's metrics in the Prometheus text format (gateway/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.deps import ClientsDep, MetricsDep, SettingsDep, StoreDep

router = APIRouter(tags=["metrics"])

# A scrape probes only addresses whose health watch has no word yet and whose last probe is older
# than this, and waits little for them.
REPLICA_REPORT_MAX_AGE_S = 5.0
SCRAPE_PROBE_TIMEOUT_S = 1.0


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(metrics: MetricsDep, store: StoreDep, clients: ClientsDep, settings: SettingsDep) -> Response:
    """Jobs by state, queue depth, rows and images made, replica health, gRPC errors and
    latencies, HTTP latencies; open to any caller."""
    await clients.probe_stale(REPLICA_REPORT_MAX_AGE_S, min(settings.probe_timeout_s, SCRAPE_PROBE_TIMEOUT_S))
    return Response(metrics.exposition(store, clients), media_type=CONTENT_TYPE_LATEST)
