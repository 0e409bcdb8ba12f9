"""GET /: what this API is, its endpoints, and which models stand behind it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gateway.deps import ClientsDep, SettingsDep
from gateway.models import ApiInfo, EndpointInfo

router = APIRouter(tags=["info"])

# GET / is also what start-up scripts poll for readiness, so it never waits long on a service.
ROOT_PROBE_TIMEOUT_S = 1.0


@router.get("/", response_model=ApiInfo)
async def api_info(request: Request, clients: ClientsDep, settings: SettingsDep) -> ApiInfo:
    """API info: name, version, endpoints, and each service's model (with its demo flag)."""
    app = request.app
    # Read from the OpenAPI document, the one listing of routes that /docs shows too.
    endpoints = [
        EndpointInfo(method=method.upper(), path=path, summary=(operation.get("description") or operation.get("summary", "")).split("\n")[0])
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    ]
    models = await clients.probe_all(min(settings.probe_timeout_s, ROOT_PROBE_TIMEOUT_S))
    return ApiInfo(
        name=app.title,
        version=app.version,
        description=app.description,
        docs=app.docs_url or "",
        ui="/ui/" if settings.frontend_dir.is_dir() else None,
        endpoints=endpoints,
        models=models,
        demo_models=any(report.model is not None and report.model.demo_model for report in models),
    )
