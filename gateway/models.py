"""Pydantic bodies of the REST API: requests (the SEED.md fields plus the optional extensions in
docs/ARCHITECTURE.md) and responses. Shape checks live here; checks that depend on settings or on
the normalized schema (resolution bounds, prompt placeholders) live in routes/generate.py."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sdg.given import MAX_EXAMPLE_ROWS
from sdg.limits import (
    DEFAULT_GUIDANCE,
    DEFAULT_STEPS,
    MAX_FEATURE_REUSE,
    MAX_GUIDANCE,
    MAX_IMAGES,
    MAX_INFERENCE_STEPS,
    MAX_INSTRUCTIONS_CHARS,
    MAX_ROWS,
    MAX_SEED,
    AnnotationKind,
    Scheduler,
)

OutputFormat = Literal["json", "jsonl", "csv", "parquet"]
JobType = Literal["text", "images", "unified", "tables"]
JobState = Literal["queued", "running", "completed", "failed", "cancelled"]
ShardState = Literal["queued", "running", "completed", "partial", "failed", "interrupted"]
FINISHED_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def _non_empty_strings(values: list[str], what: str) -> list[str]:
    for i, value in enumerate(values):
        if not value.strip():
            raise ValueError(f"{what} {i} is empty")
    return values


class JobRequest(BaseModel):
    # A misspelt field is an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")

    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Job seed; unset draws one (recorded in the manifest).")


DEFAULT_FEW_SHOT = 3


class SeedData(BaseModel):
    """Rows of an uploaded dataset (POST /datasets) that a job's rows start from."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(..., min_length=1, max_length=32)
    columns: list[str] = Field(
        ..., min_length=1, description="carry: schema fields each row takes from its seed row; few_shot: the columns the examples show."
    )
    mode: Literal["carry", "few_shot"] = Field(
        "carry",
        description="carry: each row holds the columns of a seed row drawn from the job seed, and the LLM writes the rest; "
        "few_shot: k seed rows are shown as examples in the prompt every row shares.",
    )
    replace: bool | None = Field(None, description="carry: draw seed rows with replacement (the default) or without.")
    k: int | None = Field(None, ge=1, le=MAX_EXAMPLE_ROWS, description=f"few_shot: how many example rows (default {DEFAULT_FEW_SHOT}).")

    @field_validator("columns")
    @classmethod
    def _columns_once(cls, columns: list[str]) -> list[str]:
        for i, name in enumerate(columns):
            if name in columns[:i]:
                raise ValueError(f"column {name!r} is named twice")
        return columns

    @model_validator(mode="after")
    def _knobs_of_the_mode(self) -> SeedData:
        if self.mode == "few_shot" and self.replace is not None:
            raise ValueError("replace applies to mode carry only")
        if self.mode == "carry" and self.k is not None:
            raise ValueError("k applies to mode few_shot only")
        return self

    @property
    def with_replacement(self) -> bool:
        return self.replace is not False

    @property
    def examples(self) -> int:
        return self.k if self.k is not None else DEFAULT_FEW_SHOT


class TextFields(JobRequest):
    schema_: Any = Field(
        ...,
        alias="schema",
        description='SDG shorthand ({"age": "int"}), JSON Schema properties, or a JSON Schema (a Pydantic model_json_schema() too).',
        examples=[{"customer_name": "string", "age": "int", "order_value": "float"}],
    )
    num_samples: int = Field(100, ge=1, le=MAX_ROWS)
    output_format: OutputFormat = "json"
    temperature: float | None = Field(None, gt=0, le=10)
    instructions: str = Field("", max_length=MAX_INSTRUCTIONS_CHARS, description='Guidance for the rows, e.g. "customers of a Dutch bakery".')
    keep_duplicates: bool = False
    optional_rate: float = Field(
        0.5, ge=0, le=1, description="The share of rows that leave out each optional property (one the schema does not require)."
    )
    seed_data: SeedData | None = Field(None, description="Rows of an uploaded dataset to carry into each row, or to show as examples.")


class ImageFields(JobRequest):
    prompts: list[str] = Field(..., min_length=1)
    num_images: int = Field(1, ge=1, le=MAX_IMAGES)
    resolution: tuple[int, int] = Field((512, 512), description="[width, height], multiples of 8.")
    annotations: list[AnnotationKind] = Field(default_factory=list)
    negative_prompt: str = ""
    num_inference_steps: int = Field(DEFAULT_STEPS, ge=1, le=MAX_INFERENCE_STEPS)
    guidance_scale: float = Field(DEFAULT_GUIDANCE, ge=0, le=MAX_GUIDANCE)
    scheduler: Scheduler = "default"
    labels: list[str] = Field(default_factory=list, description="Object words to annotate; empty: the prompt's nouns.")
    feature_reuse: int = Field(
        1,
        ge=1,
        le=MAX_FEATURE_REUSE,
        description="Run the whole UNet every N steps and only its shallow layers in between, on the deep features of the "
        "last full step (after DeepCache): at 3, about half of SD-1.5's UNet work; approximate. 1: the exact images.",
    )

    @field_validator("prompts")
    @classmethod
    def _prompts_not_empty(cls, prompts: list[str]) -> list[str]:
        return _non_empty_strings(prompts, "prompt")

    @field_validator("labels")
    @classmethod
    def _labels_not_empty(cls, labels: list[str]) -> list[str]:
        return _non_empty_strings(labels, "label")

    @field_validator("annotations")
    @classmethod
    def _annotations_once(cls, kinds: list[str]) -> list[str]:
        return list(dict.fromkeys(kinds))


class TextRequest(TextFields):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"schema": {"name": "string", "age": "int"}, "num_samples": 50, "output_format": "csv"}]}
    )


class ImagesRequest(ImageFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompts": ["A modern warehouse interior", "An outdoor retail storefront"],
                    "num_images": 10,
                    "resolution": [512, 512],
                    "annotations": ["bbox"],
                }
            ]
        }
    )


class UnifiedRequest(TextFields, ImageFields):
    """Rows first, then images: image i is paired with row i, its prompt formatted with the row."""

    num_images: int | None = Field(None, ge=1, le=MAX_IMAGES, description="Defaults to num_samples.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema": {"id": "int", "product": "string", "price": "float"},
                    "num_samples": 50,
                    "prompts": ["A product on white background"],
                    "output_format": "json",
                }
            ]
        }
    )


class TableFields(BaseModel):
    """One table of a tables job."""

    model_config = ConfigDict(extra="forbid")

    schema_: Any = Field(..., alias="schema", description='Its fields; one may be x-sdg {"foreign_key": "customers.id"}.')
    num_samples: int | None = Field(None, ge=1, le=MAX_ROWS, description="Rows of a table without a parent.")
    per_parent: int | dict[str, Any] | None = Field(
        None, description='Rows per parent row: a count, {"fixed": {"count": n}}, {"poisson": {"mean": m}} or {"uniform": {"min": a, "max": b}}.'
    )
    instructions: str = Field("", max_length=MAX_INSTRUCTIONS_CHARS)


class TablesRequest(JobRequest):
    """Related tables: parents first, each child row written with its parent row in its prompt."""

    tables: dict[str, TableFields] = Field(..., min_length=1)
    output_format: OutputFormat = "json"
    temperature: float | None = Field(None, gt=0, le=10)
    instructions: str = Field("", max_length=MAX_INSTRUCTIONS_CHARS)
    keep_duplicates: bool = False
    optional_rate: float = Field(0.5, ge=0, le=1)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tables": {
                        "customers": {"schema": {"id": {"type": "integer", "x-sdg": {"sequence": {"start": 1}}}, "name": "string"}, "num_samples": 100},
                        "orders": {
                            "schema": {"id": {"type": "integer", "x-sdg": {"sequence": {"start": 1}}},
                                       "customer_id": {"type": "integer", "x-sdg": {"foreign_key": "customers.id"}}, "total": "float"},
                            "per_parent": {"poisson": {"mean": 3}},
                        },
                    },
                    "output_format": "json",
                }
            ]
        }
    )


class JobAccepted(BaseModel):
    job_id: str
    message: str


class JobStats(BaseModel):
    rows_done: int = 0
    rows_total: int = 0
    images_done: int = 0
    images_total: int = 0
    step: int = 0
    total_steps: int = 0


class Resume(BaseModel):
    """One resume of a job that had stopped part-way: by POST /jobs/{job_id}/resume, at a gateway
    start, or a failover."""

    at: str
    images_kept: int | None = Field(None, description="Images the job already had, which the resumed run keeps (null for a text job).")
    rows_kept: int | None = Field(None, description="Rows the job already had, which the resumed run keeps (null for an images job).")
    rows_seed: int | None = Field(
        None, description="The seed the resumed run samples the rows it lacks with; null when it lacks none."
    )
    automatic: bool = Field(
        False, description="Made by the gateway, when it started again (SDG_RESUME_INTERRUPTED) or at a failover, not by a request."
    )
    failover_from: str | None = Field(
        None, description="A failover: the address of the replica the job lost mid-stream, resumed at once on another; else null."
    )
    failover_reason: str | None = Field(None, description="A failover: how the job's last attempt lost its replica; else null.")


class DeletedJob(BaseModel):
    """The answer to DELETE /jobs/{job_id}."""

    job_id: str
    files_deleted: bool = Field(description="Whether the job's output folder was deleted with it.")
    message: str


class JobSummary(BaseModel):
    """One entry of GET /jobs."""

    job_id: str
    type: JobType
    status: JobState
    progress: int = Field(0, ge=0, le=100)
    created_at: str


class ShardStatus(BaseModel):
    """One entry of GET /jobs/{job_id}/shards (gateway/shards.py)."""

    run: int = Field(description="0 for the job's first run, then one more for each resume")
    kind: Literal["rows", "images"]
    table: str | None = Field(None, description="a tables job's table")
    shard: int
    state: ShardState
    first: int = Field(description="its first row or image: for images, the index of its first image")
    size: int = Field(description="the rows or images it is to make")
    done: int = Field(description="the rows or images of it written")
    attempts: int
    replica: str | None = Field(None, description="the address of the replica of its last attempt")
    error: str | None = Field(None, description="why its last lost attempt was lost")
    gateway: str | None = Field(None, description="the gateway holding its lease while it runs")
    lease_expires_at: float | None = None


class JobStatus(JobSummary):
    """GET /status/{job_id}."""

    output_path: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""
    error: str | None = None
    partial: bool = False
    stats: JobStats = Field(default_factory=JobStats)
    files: list[str] = Field(default_factory=list, description="Paths relative to output_path, once finished.")
    request: dict[str, Any] = Field(default_factory=dict)
    resumes: list[Resume] = Field(default_factory=list, description="Each time the job was resumed, oldest first.")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATES


class ModelDescription(BaseModel):
    """What a service reports it has loaded (sdg.v1.ModelInfo)."""

    model_id: str
    display_name: str
    source: str
    demo_model: bool
    loaded: bool
    device: str
    dtype: str


ServiceState = Literal["serving", "not_serving", "unavailable"]


class ServiceReport(BaseModel):
    kind: Literal["text", "image"]
    address: str
    status: ServiceState
    model: ModelDescription | None = None
    error: str | None = None


class HealthReport(BaseModel):
    status: Literal["healthy", "degraded"]
    text_model: str
    image_model: str
    jobs_in_progress: int
    demo_models: bool
    services: dict[str, ServiceReport]


class EndpointInfo(BaseModel):
    method: str
    path: str
    summary: str


class ApiInfo(BaseModel):
    name: str
    version: str
    description: str
    docs: str
    ui: str | None
    endpoints: list[EndpointInfo]
    models: list[ServiceReport]
    demo_models: bool
