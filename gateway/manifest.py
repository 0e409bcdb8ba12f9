"""manifest.json, the account of a job's folder: written when the folder opens and at every end,
read back to resume, salvage or report on it. `read_manifest` is its one reader and
`write_manifest` its one writer; the rest of the gateway holds a typed Manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.outputs import write_json_atomic

MANIFEST_FILE = "manifest.json"


class Section(BaseModel):
    # What older gateways wrote, or a newer one, is kept as it was.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Counts(Section):
    requested: int = 0
    generated: int = 0
    invalid_regenerated: int | None = None
    duplicates_removed: int | None = None
    images_requested: int | None = None
    images_generated: int | None = None


class Tokens(Section):
    generated: int = 0
    forced: int = 0


class Annotations(Section):
    produced: list[str] = Field(default_factory=list)  # the kinds the images carry


class Manifest(Section):
    job_id: str | None = None
    type: str | None = None
    status: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    model: dict[str, dict[str, Any]] = Field(default_factory=dict)  # by service kind: what it served
    demo_model: bool = False
    seed: int | None = None
    counts: Counts = Field(default_factory=Counts)
    timings: dict[str, Any] = Field(default_factory=dict)
    partial: bool | None = None
    reason: str | None = None
    output_format: str | None = None
    files: list[str] = Field(default_factory=list)
    request: dict[str, Any] = Field(default_factory=dict)
    # Sections a job has only when they apply: left out of the file while None.
    resumes: list[dict[str, Any]] | None = None
    failovers: int | None = None
    shards: list[dict[str, Any]] | None = None
    tables: dict[str, dict[str, Any]] | None = None
    referential_integrity: dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")  # how the schema was read (sdg.schema)
    constraints: dict[str, Any] | None = None
    seed_data: dict[str, Any] | None = None
    distinct_ratio: float | None = None
    tokens: Tokens | None = None
    annotations: Annotations | None = None
    images: dict[str, Any] | None = None

    def unique_collisions(self) -> dict[str, int]:
        """Collisions counted per unique field (sdg.design.UniqueLedger)."""
        unique = (self.constraints or {}).get("unique", {})
        return {name: account.get("collisions", 0) for name, account in unique.items()}


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest; None when it has none or it cannot be read."""
    try:
        return Manifest.model_validate(json.loads((folder / MANIFEST_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None


SECTIONS = frozenset({"resumes", "failovers", "shards", "tables", "referential_integrity", "schema", "constraints", "seed_data",
                      "distinct_ratio", "tokens", "annotations", "images"})


def manifest_json(manifest: Manifest) -> dict[str, Any]:
    data = manifest.model_dump(mode="json", by_alias=True)
    data["counts"] = {k: v for k, v in data["counts"].items() if v is not None}
    return {k: v for k, v in data.items() if v is not None or k not in SECTIONS}


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Atomically: a reader sees the old manifest or the new one."""
    write_json_atomic(folder / MANIFEST_FILE, manifest_json(manifest))
