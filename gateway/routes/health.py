"""GET /health: asks every configured service address for its health and loaded model."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.deps import ClientsDep, SettingsDep, StoreDep
from gateway.jobs import UNFINISHED
from gateway.models import HealthReport, ServiceReport

router = APIRouter(tags=["health"])


def model_label(reports: list[ServiceReport]) -> str:
    """SEED.md's "<model> (loaded)", one label per distinct state over a service's addresses. The
    model's display name is passed on verbatim: demo models already say "random weights"."""
    labels = []
    for report in reports:
        if report.model is None:
            labels.append(f"unavailable at {report.address}")
            continue
        # A service still loading its model may not know its name yet.
        name = report.model.display_name or f"{report.kind} model"
        if report.status == "serving":
            labels.append(f"{name} (loaded)")
        else:
            labels.append(f"{name} (unavailable: not serving yet at {report.address})")
    return "; ".join(dict.fromkeys(labels))


@router.get(
    "/health",
    response_model=HealthReport,
    responses={500: {"model": HealthReport, "description": "Degraded: a service is down or not serving"}},
)
async def health(response: Response, clients: ClientsDep, store: StoreDep, settings: SettingsDep) -> HealthReport:
    """200 when every service address serves its model, 500 ("degraded") otherwise."""
    reports = await clients.probe_all(settings.probe_timeout_s)
    healthy = all(report.status == "serving" for report in reports)
    response.status_code = 200 if healthy else 500
    return HealthReport(
        status="healthy" if healthy else "degraded",
        text_model=model_label([r for r in reports if r.kind == "text"]),
        image_model=model_label([r for r in reports if r.kind == "image"]),
        jobs_in_progress=store.count(*UNFINISHED),
        demo_models=any(report.model is not None and report.model.demo_model for report in reports),
        services={report.address: report for report in reports},
    )
