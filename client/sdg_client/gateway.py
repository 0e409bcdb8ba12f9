"""SDG: the handle on one gateway. It submits text, images and unified jobs and looks jobs up.
Arguments left as None are not sent, so the gateway's own defaults apply; keyword arguments the
client does not name are sent as they are, so a field the API gains works before the client
knows it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from sdg_client.errors import SDGError
from sdg_client.job import Job
from sdg_client.status import JobSummary
from sdg_client.transport import Transport


def _schema_and_model(schema_or_model: Any) -> tuple[Any, type | None]:
    """A Pydantic v2 model class is sent as its JSON Schema and remembered for Job.to_models()."""
    if isinstance(schema_or_model, type) and hasattr(schema_or_model, "model_json_schema"):
        return schema_or_model.model_json_schema(), schema_or_model
    return schema_or_model, None


def _prompt_list(prompts: Sequence[str] | str) -> Any:
    # A lone string goes as it is, for the API to refuse, rather than as a list of its letters.
    return prompts if isinstance(prompts, str) else list(prompts)


def _body(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


class SDG:
    """A client of the SDG gateway at `base_url`. With `api_key`, every request carries
    `Authorization: Bearer <api_key>`. `timeout` bounds each HTTP request, not a job. `http` is
    the underlying httpx.Client, for the endpoints the client does not wrap."""

    def __init__(self, base_url: str = "http://localhost:8000", api_key: str | None = None, *, timeout: float | httpx.Timeout = 30.0):
        from sdg_client import __version__

        self._transport = Transport(base_url, api_key, timeout, user_agent=f"sdg-client/{__version__}")

    @property
    def http(self) -> httpx.Client:
        return self._transport.http

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> SDG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- jobs --------------------------------------------------------------------------------------

    def text(
        self,
        schema_or_model: Any,
        n: int,
        *,
        output_format: str = "json",
        seed: int | None = None,
        instructions: str = "",
        temperature: float | None = None,
        keep_duplicates: bool = False,
        **more: Any,
    ) -> Job:
        """Submits `n` rows that follow the schema (SDG shorthand, JSON Schema, or a Pydantic model
        class) as POST /generate/text."""
        schema, model = _schema_and_model(schema_or_model)
        body = _body(
            schema=schema,
            num_samples=n,
            output_format=output_format,
            seed=seed,
            instructions=instructions,
            temperature=temperature,
            keep_duplicates=keep_duplicates,
            **more,
        )
        return self._submit("text", body, model)

    def images(
        self,
        prompts: Sequence[str],
        n: int,
        *,
        resolution: tuple[int, int] | None = None,
        annotations: Sequence[str] | None = None,
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        scheduler: str | None = None,
        labels: Sequence[str] | None = None,
        feature_reuse: int | None = None,
        seed: int | None = None,
        **more: Any,
    ) -> Job:
        """Submits `n` images spread over `prompts` round-robin as POST /generate/images.
        `resolution` is (width, height); `annotations` any of bbox, segmentation, caption."""
        body = _body(
            prompts=_prompt_list(prompts),
            num_images=n,
            **_image_fields(resolution, annotations, negative_prompt, num_inference_steps, guidance_scale, scheduler, labels, feature_reuse),
            seed=seed,
            **more,
        )
        return self._submit("images", body, None)

    def unified(
        self,
        schema_or_model: Any,
        prompts: Sequence[str],
        n: int,
        *,
        num_images: int | None = None,
        output_format: str = "json",
        seed: int | None = None,
        instructions: str = "",
        temperature: float | None = None,
        keep_duplicates: bool = False,
        resolution: tuple[int, int] | None = None,
        annotations: Sequence[str] | None = None,
        negative_prompt: str | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        scheduler: str | None = None,
        labels: Sequence[str] | None = None,
        feature_reuse: int | None = None,
        **more: Any,
    ) -> Job:
        """Submits `n` rows and an image for each of the first `num_images` (default: all) as POST
        /generate/unified. Image i's prompt is prompts[i % len(prompts)] formatted with row i's
        fields ("A {product} on white"); the data gains an `image_file` column."""
        schema, model = _schema_and_model(schema_or_model)
        body = _body(
            schema=schema,
            num_samples=n,
            num_images=num_images,
            prompts=_prompt_list(prompts),
            output_format=output_format,
            seed=seed,
            instructions=instructions,
            temperature=temperature,
            keep_duplicates=keep_duplicates,
            **_image_fields(resolution, annotations, negative_prompt, num_inference_steps, guidance_scale, scheduler, labels, feature_reuse),
            **more,
        )
        return self._submit("unified", body, model)

    def job(self, job_id: str, model: type | None = None) -> Job:
        """A handle on a job submitted earlier; `model` is the Pydantic class for to_models()."""
        return Job(self._transport, job_id, model)

    def jobs(self) -> list[JobSummary]:
        """Every job the gateway knows, newest first."""
        return [JobSummary.from_json(body) for body in self._transport.json("GET", "/jobs")]

    def health(self) -> dict[str, Any]:
        """GET /health's report. A degraded gateway answers 500, which is returned, not raised."""
        try:
            return self._transport.json("GET", "/health")
        except SDGError as err:
            if err.status_code == 500 and isinstance(err.detail, dict) and "status" in err.detail:
                return err.detail
            raise

    def _submit(self, kind: str, body: dict[str, Any], model: type | None) -> Job:
        accepted = self._transport.json("POST", f"/generate/{kind}", json=body)
        return Job(self._transport, accepted["job_id"], model)


def _image_fields(
    resolution: tuple[int, int] | None,
    annotations: Sequence[str] | None,
    negative_prompt: str | None,
    num_inference_steps: int | None,
    guidance_scale: float | None,
    scheduler: str | None,
    labels: Sequence[str] | None,
    feature_reuse: int | None,
) -> dict[str, Any]:
    return _body(
        resolution=list(resolution) if resolution is not None else None,
        annotations=list(annotations) if annotations is not None else None,
        negative_prompt=negative_prompt,
        num_inference_steps=num_inference_steps,
        guidance_scale=guidance_scale,
        scheduler=scheduler,
        labels=list(labels) if labels is not None else None,
        feature_reuse=feature_reuse,
    )
