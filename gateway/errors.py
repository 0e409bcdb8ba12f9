"""The gateway's error types, the one gRPC → HTTP status table, and one exception handler per error
type, so every error leaves the API as {"detail": ...}."""

from __future__ import annotations

import math
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sdg.schema import SchemaError

GRPC_TO_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


def http_status_for(code: grpc.StatusCode) -> int:
    """The HTTP status for a gRPC status; anything not in the table is a server error."""
    return GRPC_TO_HTTP.get(code, 500)


class InvalidRequest(ValueError):
    """Input the API cannot honour although pydantic accepted its shape (400). `field` names it."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class JobNotFound(LookupError):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(f"job {job_id!r} not found")


class DatasetNotFound(LookupError):
    def __init__(self, dataset_id: str):
        self.dataset_id = dataset_id
        super().__init__(f"dataset {dataset_id!r} not found")


class TooLarge(ValueError):
    """An upload past a size limit (413); the message names the limit."""


class OutputFileNotFound(LookupError):
    def __init__(self, job_id: str, path: str | None = None):
        super().__init__(f"job {job_id!r} has no output folder" if path is None else f"job {job_id!r} has no output file {path!r}")


class JobConflict(RuntimeError):
    """The job is in a state that does not allow the request, e.g. cancelling a finished job (409)."""


class Unauthenticated(PermissionError):
    """A request without a known API key while keys are on (401)."""


class LimitReached(RuntimeError):
    """A request over a limit (429): `limit` names it, `retry_after_s` is when to try again."""

    def __init__(self, limit: str, reason: str, retry_after_s: int):
        self.limit = limit
        self.retry_after_s = retry_after_s
        super().__init__(f"{limit}: {reason}")


class JobFailure(RuntimeError):
    """A job cannot go on for a reason its status should state (not a bug in the gateway)."""


class ServiceFailure(JobFailure):
    """A model service failed a job: unreachable, rejected it, went silent or broke its stream.
    The message names the service and its address; `code` is the gRPC status when there was one."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None, kind: str | None = None, address: str | None = None):
        self.code = code
        self.kind, self.address = kind, address
        super().__init__(message)

    @classmethod
    def from_rpc_error(cls, kind: str, address: str, err: grpc.aio.AioRpcError) -> ServiceFailure:
        code, details = err.code(), err.details() or ""
        if code == grpc.StatusCode.UNAVAILABLE:
            message = f"{kind} service unavailable at {address}: {details}"
        elif code == grpc.StatusCode.INVALID_ARGUMENT:
            message = f"{kind} service at {address} rejected the request: {details}"
        elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
            message = f"{kind} service at {address} did not answer in time: {details}"
        else:
            message = f"{kind} service at {address} failed ({code.name}): {details}"
        return cls(message, code, kind, address)

    @property
    def http_status(self) -> int:
        return http_status_for(self.code) if self.code is not None else 500


class ReplicaLost(ServiceFailure):
    """A replica went away while a job streamed from it (UNAVAILABLE: its process died, or it shut
    down past its grace): another replica can take the job over (gateway/failover.py)."""

    kind: str
    address: str


def _detail(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


# The bounds on every float field in models.py are what keep NaN and ±inf from the engines, but NaN
# fails every comparison, so pydantic calls a NaN guidance_scale "not less than or equal to 50".
# Such errors are reported in pydantic's own words for an int field given NaN.
_NOT_FINITE = {"type": "finite_number", "msg": "Input should be a finite number"}
_BOUND_CHECKS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


def _json_safe(value: Any) -> Any:
    """`value` with its NaN and ±inf as the strings JSON clients know them by: the response encoder
    refuses them, and Python's json (so Starlette) accepts them in a request body."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _validation_detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's default 422 detail (loc, msg, type, input, ctx), made JSON-safe, with a number that
    is not finite said to be so instead of out of bounds."""
    detail = []
    for error in jsonable_encoder(errors):
        value = error.get("input")
        if error.get("type") in _BOUND_CHECKS and isinstance(value, float) and not math.isfinite(value):
            error = {k: v for k, v in error.items() if k != "ctx"} | _NOT_FINITE
        detail.append(_json_safe(error))
    return detail


def install_exception_handlers(app: FastAPI) -> None:
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _detail(422, _validation_detail(exc.errors()))

    async def invalid_request(_: Request, exc: InvalidRequest) -> JSONResponse:
        return _detail(400, str(exc))

    async def invalid_schema(_: Request, exc: SchemaError) -> JSONResponse:
        return _detail(400, str(exc))

    async def job_not_found(_: Request, exc: JobNotFound) -> JSONResponse:
        return _detail(404, str(exc))

    async def dataset_not_found(_: Request, exc: DatasetNotFound) -> JSONResponse:
        return _detail(404, str(exc))

    async def too_large(_: Request, exc: TooLarge) -> JSONResponse:
        return _detail(413, str(exc))

    async def output_file_not_found(_: Request, exc: OutputFileNotFound) -> JSONResponse:
        return _detail(404, str(exc))

    async def job_conflict(_: Request, exc: JobConflict) -> JSONResponse:
        return _detail(409, str(exc))

    async def limit_reached(_: Request, exc: LimitReached) -> JSONResponse:
        response = _detail(429, str(exc))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    async def unauthenticated(_: Request, exc: Unauthenticated) -> JSONResponse:
        response = _detail(401, str(exc))
        response.headers["WWW-Authenticate"] = "Bearer"
        return response

    async def service_failure(_: Request, exc: ServiceFailure) -> JSONResponse:
        return _detail(exc.http_status, str(exc))

    async def rpc_error(_: Request, exc: grpc.aio.AioRpcError) -> JSONResponse:
        return _detail(http_status_for(exc.code()), f"{exc.code().name}: {exc.details()}")

    app.add_exception_handler(RequestValidationError, invalid_body)
    app.add_exception_handler(InvalidRequest, invalid_request)
    app.add_exception_handler(SchemaError, invalid_schema)
    app.add_exception_handler(JobNotFound, job_not_found)
    app.add_exception_handler(DatasetNotFound, dataset_not_found)
    app.add_exception_handler(TooLarge, too_large)
    app.add_exception_handler(OutputFileNotFound, output_file_not_found)
    app.add_exception_handler(JobConflict, job_conflict)
    app.add_exception_handler(LimitReached, limit_reached)
    app.add_exception_handler(Unauthenticated, unauthenticated)
    app.add_exception_handler(ServiceFailure, service_failure)
    app.add_exception_handler(grpc.aio.AioRpcError, rpc_error)
