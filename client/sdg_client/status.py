"""Typed views of GET /jobs and GET /status/{job_id}. Fields the client does not know yet stay
readable in `raw`, so a newer gateway's additions are not lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINISHED_STATES = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True)
class JobStats:
    rows_done: int = 0
    rows_total: int = 0
    images_done: int = 0
    images_total: int = 0
    step: int = 0
    total_steps: int = 0

    @classmethod
    def from_json(cls, body: dict[str, Any] | None) -> JobStats:
        body = body or {}
        return cls(**{name: int(body.get(name) or 0) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class JobSummary:
    """One entry of GET /jobs."""

    job_id: str
    type: str
    status: str
    progress: int = 0
    created_at: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobSummary:
        return cls(**_summary_fields(body))


@dataclass(frozen=True)
class JobStatus(JobSummary):
    """GET /status/{job_id}: progress while the job runs, its files and any error once finished."""

    message: str = ""
    error: str | None = None
    partial: bool = False
    output_path: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    stats: JobStats = field(default_factory=JobStats)
    files: list[str] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)
    resumes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> JobStatus:
        return cls(
            **_summary_fields(body),
            message=body.get("message") or "",
            error=body.get("error"),
            partial=bool(body.get("partial", False)),
            output_path=body.get("output_path"),
            started_at=body.get("started_at"),
            finished_at=body.get("finished_at"),
            stats=JobStats.from_json(body.get("stats")),
            files=list(body.get("files") or []),
            request=dict(body.get("request") or {}),
            resumes=list(body.get("resumes") or []),
        )


def _summary_fields(body: dict[str, Any]) -> dict[str, Any]:
    """What GET /jobs and GET /status share."""
    return {
        "job_id": body["job_id"],
        "type": body["type"],
        "status": body["status"],
        "progress": body.get("progress", 0),
        "created_at": body.get("created_at", ""),
        "raw": body,
    }
