"""Plans: what a job will ask the services for, built from a validated request at submit time.
Checks that need settings or the normalized schema (resolution bounds, prompt placeholders) are
made here, so that a job that is accepted can be run as asked."""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.errors import InvalidRequest, JobFailure
from gateway.models import ImageFields, ImagesRequest, JobType, SeedData, TablesRequest, TextFields, TextRequest, UnifiedRequest
from gateway.settings import GatewaySettings
from sdg.limits import MAX_IMAGES, MAX_SEED, side_problem
from sdg.samplers import KEYWORD, Sequence
from sdg.schema import RowSchema, alternatives, read_schema
from sdg.seeds import draw_seed

if TYPE_CHECKING:
    from gateway.tables import TablesSpec

# The unified data file's column naming each row's image; a schema may not define it.
IMAGE_FILE_COLUMN = "image_file"


@dataclass(frozen=True)
class TextSpec:
    read: RowSchema  # the schema as the door read it
    num_rows: int
    seed: int
    temperature: float | None
    instructions: str
    keep_duplicates: bool
    optional_rate: float = 0.5
    seed_data: SeedData | None = None  # its rows are drawn at run time (gateway/seeding.py)
    # One per row of a call: values that row holds exactly, and what its prompt shows beside them.
    given_rows: tuple[dict[str, Any], ...] = ()
    given_context: tuple[dict[str, Any], ...] = ()
    example_rows: tuple[dict[str, Any], ...] = ()  # few-shot examples every row of the call reads
    # The schema sent, where it differs from the submitted one: without the `numbered` fields' samplers.
    sent: Any = None
    # Sequence fields the gateway numbers by output position, so shards and resumes go on counting.
    numbered: tuple[tuple[str, Sequence], ...] = ()

    @property
    def schema(self) -> dict[str, Any]:
        """The normalized schema: the data file's columns, and schema.json."""
        return self.read.schema

    @property
    def source(self) -> Any:
        """The schema the text service validates rows against: as submitted, less what the gateway numbers."""
        return self.read.submitted if self.sent is None else self.sent

    @property
    def carried(self) -> frozenset[str]:
        """The fields seed rows carry into the output (seed_data carry)."""
        carry = self.seed_data is not None and self.seed_data.mode == "carry"
        return frozenset(self.seed_data.columns) if carry else frozenset()

    def numbers(self, position: int) -> dict[str, Any]:
        """The numbered fields' values at an output position."""
        return {name: sequence.draw(None, position, {}) for name, sequence in self.numbered}


def top_properties(schema: Any) -> dict[str, Any] | None:
    """The top-level properties a schema names (a JSON Schema object's, or the properties form)."""
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("properties"), dict) and (schema.get("type") == "object" or "$schema" in schema or "required" in schema):
        return schema["properties"]
    return schema


def without_keys(prop: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A property with `keys` taken out of its x-sdg object, and the object with them when it empties."""
    rest = {k: v for k, v in prop.get(KEYWORD, {}).items() if k not in keys}
    stripped = {k: v for k, v in prop.items() if k != KEYWORD}
    return {**stripped, KEYWORD: rest} if rest else stripped


def numbered_by_gateway(read: RowSchema) -> tuple[Any, tuple[tuple[str, Sequence], ...]]:
    """The schema to send, without its sequence samplers, and those samplers by field; (None, ())
    when it has none."""
    samplers = read.samplers.samplers if read.samplers else {}
    numbered = tuple((name, s) for name, s in samplers.items() if isinstance(s, Sequence))
    if not numbered:
        return None, ()
    sent = copy.deepcopy(read.submitted)
    properties = top_properties(sent)
    for name, _ in numbered:
        properties[name] = without_keys(properties[name], ("sequence",))
    return sent, numbered


@dataclass(frozen=True)
class ImageSpec:
    # For a unified job these are templates formatted with each row's fields.
    prompts: list[str]
    num_images: int
    width: int
    height: int
    negative_prompt: str
    num_inference_steps: int
    guidance_scale: float
    seed: int
    scheduler: str
    annotations: list[str]
    labels: list[str] = field(default_factory=list)
    # The first image index to generate: above 0 when a job resumes (see gateway/resume.py).
    first_index: int = 0
    feature_reuse: int = 1


@dataclass(frozen=True)
class JobPlan:
    type: JobType
    text: TextSpec | None = None
    images: ImageSpec | None = None
    output_format: str | None = None
    tables: TablesSpec | None = None

    @property
    def rows(self) -> int:
        """The rows the job asks for (a tables job's: as many as its counts are expected to give)."""
        return self.text.num_rows if self.text else self.tables.expected_rows if self.tables else 0

    @property
    def seed(self) -> int:
        return (self.text or self.images or self.tables).seed


def job_seed(requested: int | None) -> int:
    """The request's seed, or one drawn now, so that the manifest always records the seed used and
    both halves of a unified job share it."""
    return requested if requested is not None else draw_seed()


def text_spec(request: TextFields, seed: int) -> TextSpec:
    read = read_schema(request.schema_)
    if read.design:
        read.design.check_rows(request.num_samples)
    sent, numbered = numbered_by_gateway(read)
    return TextSpec(
        read=read,
        num_rows=request.num_samples,
        seed=seed,
        temperature=request.temperature,
        instructions=request.instructions,
        keep_duplicates=request.keep_duplicates,
        optional_rate=request.optional_rate,
        seed_data=request.seed_data,
        sent=sent,
        numbered=numbered,
    )


def check_resolution(resolution: tuple[int, int], settings: GatewaySettings) -> None:
    low, high = settings.min_resolution, settings.max_resolution
    for axis, value in zip(("width", "height"), resolution):
        if problem := side_problem(value, low, high):
            raise InvalidRequest("resolution", f"{axis} {problem}")


def image_spec(request: ImageFields, num_images: int, seed: int, settings: GatewaySettings) -> ImageSpec:
    check_resolution(request.resolution, settings)
    if seed + num_images - 1 > MAX_SEED:
        raise InvalidRequest("seed", f"image i gets seed + i, which must stay within 0..2**63-1: at most {MAX_SEED - num_images + 1} for {num_images} images")
    width, height = request.resolution
    return ImageSpec(
        prompts=[prompt.strip() for prompt in request.prompts],
        num_images=num_images,
        width=width,
        height=height,
        negative_prompt=request.negative_prompt,
        num_inference_steps=request.num_inference_steps,
        guidance_scale=request.guidance_scale,
        seed=seed,
        scheduler=request.scheduler,
        annotations=list(request.annotations),
        labels=[label.strip() for label in request.labels],
        feature_reuse=request.feature_reuse,
    )


def template_fields(template: str) -> list[tuple[str, str, str | None]]:
    """The row fields a prompt template names ("{product}", "{price:.2f}"), each with its format
    spec and conversion. Raises ValueError for malformed templates, positional placeholders ("{}",
    "{0}") and attribute or index lookups, which would fail only once the rows exist."""
    found = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name or name.isdigit():
            raise ValueError(f"placeholder {{{name}}} is positional; name a schema field instead")
        if "." in name or "[" in name:
            raise ValueError(f"placeholder {{{name}}}: only top-level field names are supported")
        found.append((name, spec, conversion))
    return found


# A value of each JSON type as format_prompt passes it on (null and a missing field read as "").
_SAMPLE_VALUES = {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "null": "", "array": [], "object": {}}


def field_samples(prop: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    """Values a row's field can hold, one per JSON type its schema allows (its enum values too)."""
    samples: list[Any] = []
    for node in alternatives(schema, prop):
        types = node.get("type", [] if "enum" in node else list(_SAMPLE_VALUES))
        samples += [_SAMPLE_VALUES[t] for t in ([types] if isinstance(types, str) else types) if t in _SAMPLE_VALUES]
        samples += ["" if value is None else value for value in node.get("enum", [])]
    return samples


class _RowFields(dict):
    # A row may leave out an optional field: its placeholder reads as empty rather than failing
    # the image after the rows were already generated.
    def __missing__(self, key: str) -> str:
        return ""


def format_prompt(template: str, row: dict[str, Any]) -> str:
    """The template filled in with the row; a format spec that does not suit the row's value (say
    "{price:.2f}" on a missing price) fails the job with the template and the value named."""
    try:
        return template.format_map(_RowFields({k: "" if v is None else v for k, v in row.items()}))
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise JobFailure(f"prompt {template!r} cannot be formatted with row {row}: {err}") from None


def check_templates(prompts: list[str], schema: dict[str, Any]) -> None:
    """Each prompt template names schema fields only, with a format spec every value of the field
    can take: a spec that fails a row would fail the job after its rows were made."""
    properties = schema["properties"]
    required = set(schema.get("required", []))
    for i, template in enumerate(prompts):
        try:
            used = template_fields(template)
        except ValueError as err:
            raise InvalidRequest(f"prompts[{i}]", str(err)) from None
        for name, spec, conversion in used:
            if name not in properties:
                raise InvalidRequest(
                    f"prompts[{i}]", f"placeholder {{{name}}} is not a schema field; fields are {', '.join(properties)}"
                )
            samples = field_samples(properties[name], schema) + ([] if name in required else [""])
            placeholder = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            for sample in samples:
                try:
                    placeholder.format_map({name: sample})
                except (ValueError, TypeError) as err:
                    shown = "empty values (null or missing)" if sample == "" else f"{type(sample).__name__} values"
                    raise InvalidRequest(f"prompts[{i}]", f"placeholder {placeholder} cannot format {name}'s {shown}: {err}") from None


def text_plan(request: TextRequest) -> JobPlan:
    return JobPlan("text", text=text_spec(request, job_seed(request.seed)), output_format=request.output_format)


def images_plan(request: ImagesRequest, settings: GatewaySettings) -> JobPlan:
    return JobPlan("images", images=image_spec(request, request.num_images, job_seed(request.seed), settings))


def unified_plan(request: UnifiedRequest, settings: GatewaySettings) -> JobPlan:
    seed = job_seed(request.seed)
    text = text_spec(request, seed)
    fields = list(text.schema["properties"])
    if IMAGE_FILE_COLUMN in fields:
        raise InvalidRequest(f"schema.{IMAGE_FILE_COLUMN}", "is reserved in unified jobs for the path of each row's image")
    num_images = request.num_images if request.num_images is not None else request.num_samples
    if num_images > MAX_IMAGES:  # only a defaulted count can be: the body's own is checked
        raise InvalidRequest(
            "num_images", f"defaults to num_samples ({request.num_samples}), past the {MAX_IMAGES} images a job can make; set it"
        )
    if num_images > request.num_samples:
        raise InvalidRequest(
            "num_images", f"{num_images} is greater than num_samples {request.num_samples}; image i is paired with row i"
        )
    images = image_spec(request, num_images, seed, settings)
    check_templates(images.prompts, text.schema)
    return JobPlan("unified", text=text, images=images, output_format=request.output_format)


def tables_plan(request: TablesRequest) -> JobPlan:
    from gateway.tables import tables_spec  # it builds on this module's TextSpec

    return JobPlan("tables", tables=tables_spec(request), output_format=request.output_format)


def stored_plan(job_type: JobType, request: dict[str, Any], settings: GatewaySettings) -> JobPlan:
    """The plan of a request as the job record stores it (a job still queued when the last gateway
    stopped), checked again as at submission. Raises pydantic's ValidationError or a ValueError
    naming the field when today's settings no longer accept it."""
    if job_type == "text":
        return text_plan(TextRequest.model_validate(request))
    if job_type == "images":
        return images_plan(ImagesRequest.model_validate(request), settings)
    if job_type == "tables":
        return tables_plan(TablesRequest.model_validate(request))
    return unified_plan(UnifiedRequest.model_validate(request), settings)
