"""The errors the client raises. SDGError is the root of them all: an answer outside 2xx carries the
HTTP status and the API's `detail` exactly as sent; a job that ended failed or cancelled carries
its final status."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdg_client.status import JobStatus


def describe_detail(detail: Any) -> str:
    """FastAPI's `detail` as one readable line: a string as it is, a list of validation errors as
    "body.num_samples: Input should be greater than or equal to 1; ..."."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and all(isinstance(error, dict) and "msg" in error for error in detail):
        return "; ".join(f"{'.'.join(str(part) for part in error.get('loc', []))}: {error['msg']}" for error in detail)
    return json.dumps(detail, ensure_ascii=False)


class SDGError(Exception):
    """A request the gateway refused or could not answer.

    `status_code` is the HTTP status (None when no answer came, or for a job's own failure) and
    `detail` the API's `detail` as sent: a string, or FastAPI's list of validation errors.
    """

    def __init__(self, message: str, *, status_code: int | None = None, detail: Any = None):
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail

    @classmethod
    def from_response(cls, method: str, url: str, status_code: int, body: Any) -> SDGError:
        """`body` is the decoded JSON answer, or its text when it was not JSON (a proxy's page)."""
        detail = body["detail"] if isinstance(body, dict) and "detail" in body else body
        return cls(f"{method} {url} answered {status_code}: {describe_detail(detail)}", status_code=status_code, detail=detail)


class JobError(SDGError):
    """A job that ended without completing. `status` is its final /status; `error` and `message`
    are the job's own words for why."""

    def __init__(self, status: JobStatus):
        self.status = status
        self.error = status.error
        self.message = status.message
        reason = status.error or status.message or "no reason given"
        super().__init__(f"job {status.job_id} {status.status}: {reason}", detail=reason)


class JobFailed(JobError):
    """The job failed; what it made before is kept (`status.partial`) and it can be resumed."""


class JobCancelled(JobError):
    """The job was cancelled; what it made before is kept and it can be resumed."""


class WaitTimeout(SDGError, TimeoutError):
    """Job.wait() gave up before the job finished; the job itself goes on."""

    def __init__(self, status: JobStatus, timeout: float):
        self.status = status
        super().__init__(f"job {status.job_id} still {status.status} after {timeout:g} s: {status.message}")
