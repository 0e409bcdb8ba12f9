"""JobExecution: what one job does, step by step. It asks each service what it has loaded (so an
unreachable service fails the job within seconds, naming its address, before anything is written),
creates the job folder, has its phases stream rows and images into files as they arrive
(gateway/rows_phase.py, images_phase.py, tables.py), and finishes with a manifest. Every way out
(done, service failure, cancellation, shutdown) closes the files so they load, and the status and
manifest say whether the output is partial and why; a job that lost its replica mid-stream is
handed to its failover (gateway/failover.py) instead of failing."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from gateway.clients import ServiceClients, ServiceEndpoint
from gateway.datasets import DatasetStore
from gateway.errors import InvalidRequest, JobFailure, ReplicaLost, ServiceFailure
from gateway.failover import attempt, failovers
from gateway.jobs import CANCELLED, Job, JobStore
from gateway.manifest import MANIFEST_FILE, Manifest, read_manifest, write_manifest
from gateway.models import JobState, Resume
from gateway.outputs import QUALITY_FILE, ImageDatasetWriter, create_job_folder, display_path, list_files, write_json_atomic
from gateway.outputs.folders import opened_off_loop
from gateway.outputs.images import image_file
from gateway.outputs.tables import json_value, read_rows
from gateway.plans import IMAGE_FILE_COLUMN, JobPlan, TextSpec, format_prompt
from gateway.seeding import SeedRows, seed_rows
from gateway.settings import GatewaySettings
from gateway.shards import ShardBook
from gateway.slots import SlotHolder
from gateway.images_phase import ImagesPhase, ImagesRun
from gateway.rows_phase import RowsPhase, RowsRun
from gateway.tables import TablesPhase, TablesRun

log = logging.getLogger(__name__)

FOLDER_PREFIX = {"text": "text_data", "images": "images", "unified": "unified", "tables": "tables"}
# The share of the progress bar each phase fills.
PHASES = {
    "text": {"rows": (0, 100)},
    "images": {"images": (0, 100)},
    "unified": {"rows": (0, 50), "images": (50, 100)},
    "tables": {"rows": (0, 100)},
}


def kept_progress(job_type: str, rows: tuple[int, int], images: tuple[int, int]) -> int:
    """A stopped job's progress: the bar's share of its output written, each phase by its own
    share; `rows` and `images` are (written, wanted)."""
    written, kept = {"rows": rows, "images": images}, 0.0
    for phase, (low, high) in PHASES[job_type].items():
        done, wanted = written[phase]
        kept += (high - low) * min(1.0, done / max(wanted, 1))
    return min(99, int(kept))


SHUTDOWN = "interrupted: gateway shut down"
SERVICE_POLL_S = 1.0  # how often a job waiting for a service asks it again


def with_image_file(schema: dict[str, Any]) -> dict[str, Any]:
    """The unified data file's schema: the row schema plus the path of each row's image."""
    return {
        **schema,
        "properties": {**schema["properties"], IMAGE_FILE_COLUMN: {"type": ["string", "null"]}},
        "required": [*schema.get("required", []), IMAGE_FILE_COLUMN],
    }


def counted(n: int, noun: str) -> str:
    """'1 image', '2 images'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def kept_in_words(resume: Resume, plan: JobPlan) -> str:
    """What a resume keeps of the job's output: "1 row of 3 and 12 images of 30"."""
    parts = []
    if plan.text is not None:
        parts.append(f"{counted(resume.rows_kept or 0, 'row')} of {plan.text.num_rows}")
    if plan.images is not None:
        parts.append(f"{counted(resume.images_kept or 0, 'image')} of {plan.images.num_images}")
    return " and ".join(parts)


def waiting_for(service: str, waited_s: float | None = None) -> str:
    """The job's message while other jobs hold a service: their calls run before this one's (for
    `waited_s` so far), or they hold all its slots."""
    waiting = f"waiting for the {service} service, busy with other jobs"
    return waiting if waited_s is None else f"{waiting} ({waited_s:.0f} s so far)"


def paired_rows(rows: list[dict[str, Any]], written: set[int]) -> list[dict[str, Any]]:
    """A unified job's rows with the path of each row's image, or null where there is none."""
    return [{**row, IMAGE_FILE_COLUMN: image_file(i) if i in written else None} for i, row in enumerate(rows)]


class JobExecution:
    def __init__(
        self,
        job: Job,
        plan: JobPlan,
        store: JobStore,
        clients: ServiceClients,
        settings: GatewaySettings,
        fail_over: Callable[[Job, ReplicaLost], bool] | None = None,
    ):
        self.job = job
        self.plan = plan
        self.store = store
        self.clients = clients
        self.settings = settings
        # Resumes the job on another replica when it loses its own; False once it has had its attempts.
        self.fail_over = fail_over
        # Set by the runner just before it cancels this job's task: says why it stopped.
        self.stop_reason: str | None = None
        # The service slot the runner gave this job (gateway/slots.py); None when run on its own.
        self.slot: SlotHolder | None = None
        self.folder: Path | None = None
        # A job with a folder before it runs is being resumed (gateway/resume.py): it goes on in
        # that folder, from what its last run's manifest said.
        self.resuming = job.output_dir is not None
        self.resumed_from: Manifest | None = None
        # The job's phases, each with its output and account: rows, images, or a tables job's tables.
        self.text: RowsPhase | None = None
        self.images: ImagesPhase | None = None
        self.tables: TablesPhase | None = None
        # A resumed job's rows, read back from its data file (None: it has none yet).
        self.kept_rows: list[dict[str, Any]] | None = None
        self.models: dict[str, dict[str, Any]] = {}
        self.timings: dict[str, float] = {}
        self.quality: dict[str, Any] | None = None  # its report, made off the event loop once all is done
        self._submitted = time.monotonic()
        self._started = 0.0

    # -- the steps ------------------------------------------------------------------------------

    async def run(self) -> None:
        job = self.job
        self._started = time.monotonic()
        self.timings["queued_s"] = round(self._started - self._submitted, 3)
        job.move_to("running")
        job.message = "contacting the model services"
        if self.plan.images is not None:  # a unified job's count shows from the start, rows phase included
            job.stats.images_total = self.plan.images.num_images
        self.store.save(job)
        try:
            if self.resuming and self.plan.text is not None:
                # Off the event loop: a large data file takes seconds to parse.
                self.kept_rows = await asyncio.to_thread(self._read_kept_rows)
            # A resumed job whose rows are all written needs no text service; a failed-over one
            # goes to another replica than the one it lost, where another serves.
            lost = job.resumes[-1].failover_from if job.resumes else None
            text = self.clients.text.next(avoid=lost) if self.plan.tables or self.plan.text and self._rows_lacking() else None
            image = self.clients.image.next(avoid=lost) if self.plan.images else None
            # A unified job that makes rows asks after the image service once it has them and holds
            # an image slot (_generate_images): that service may still be starting or loading its
            # model meanwhile, and a text slot is not held up by it.
            first = text if text is not None else image
            if first is not None:
                await self._describe_model(first)
            await self._open_folder()
            if self.plan.text is not None:
                await self._generate_rows(text)
            if self.plan.tables is not None:
                await self._generate_tables(text)
            if image is not None:
                await self._generate_images(image)
            self.quality = await asyncio.to_thread(self._report)
        except asyncio.CancelledError:
            # The runner owns this task and cancelled it on purpose; finishing the files is the
            # handling, so the cancellation stops here.
            if self.stop_reason == SHUTDOWN and self.folder is None:
                # It made nothing (it waited for a service): the next gateway runs it again, a
                # resumed job as a resume.
                self.store.requeue(job)
            elif self.stop_reason == SHUTDOWN:
                self._finish("failed", error=SHUTDOWN)
            else:
                self._finish("cancelled", reason=self.stop_reason or CANCELLED)
        except JobFailure as err:
            self._finish("failed", error=str(err), failure=err)
        except Exception as err:
            log.exception("job %s failed", job.job_id)
            self._finish("failed", error=f"internal error: {type(err).__name__}: {err}")
        else:
            self._finish("completed")

    async def _take_image_slot(self) -> None:
        """A unified job gives up its text slot for an image slot, waiting while other jobs hold
        them all."""
        if self.slot is None:
            return
        if self.slot.must_wait("image"):
            self.job.message = waiting_for("image")
            self.store.save(self.job)
        await self.slot.take("image")

    def stop_unstarted(self, error: str | None = None) -> None:
        """Records a job that run() could not finish: cancelled while it waited for a slot, or
        `error` when recording its outcome failed. One the gateway's shutdown stopped in the queue
        is left as it is."""
        job = self.job
        if error is None and self.stop_reason == SHUTDOWN and job.status == "queued":
            return  # never started: it stays queued on disk, and the next gateway runs it
        if error is None and self.stop_reason != SHUTDOWN:
            self.store.cancel(job, self.stop_reason or CANCELLED)
        else:
            self.store.fail(job, error or SHUTDOWN, partial=job.output_dir is not None)

    async def _describe_model(self, endpoint: ServiceEndpoint) -> None:
        """Records the model `endpoint` serves, once it serves one. A service that does not answer
        may be starting beside the gateway, and one still loading its model may be downloading
        it: the job waits for either (SDG_SERVICE_START_WAIT_S, SDG_MODEL_LOAD_WAIT_S), and its
        message says so, before it fails."""
        settings, began = self.settings, time.monotonic()
        while True:
            waited = time.monotonic() - began
            try:
                model = await endpoint.model_info(settings.probe_timeout_s)
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE or waited >= settings.service_start_wait_s:
                    raise ServiceFailure.from_rpc_error(endpoint.kind, endpoint.address, err) from None
                waiting = f"waiting for the {endpoint.label} to start"
            else:
                if model.loaded:
                    self.models[endpoint.kind] = {"address": endpoint.address, **model.model_dump()}
                    return
                if waited >= settings.model_load_wait_s:
                    raise JobFailure(f"the {endpoint.label} was still loading its model after {waited:.0f}s")
                waiting = f"waiting for the {endpoint.label} to load its model"
            self.job.message = f"{waiting} ({waited:.0f} s so far)"
            self.store.save_progress(self.job)
            await asyncio.sleep(SERVICE_POLL_S)

    async def _open_folder(self) -> None:
        root = self.settings.output_dir
        if self.resuming:
            self.folder = Path(self.job.output_dir)
            if not self.folder.is_dir():
                raise JobFailure(f"cannot resume: the job's folder {self.job.output_path} no longer exists")
            self.resumed_from = read_manifest(self.folder) or Manifest(job_id=self.job.job_id, type=self.job.type)
            if self.plan.images is not None:
                # Opened first, so that however this run ends, the outcome counts the kept images.
                await opened_off_loop(lambda: setattr(self, "images", ImagesPhase(ImageDatasetWriter(self.folder, resume=True))))
                if self.job.resumes:  # what it keeps: the images still whole (queueing read no files)
                    self.job.resumes[-1].images_kept = self.images.images_written
                # The kinds the kept images carry, as their run's manifest recorded them.
                if self.resumed_from.annotations is not None:
                    self.images.writer.kinds_produced.update(self.resumed_from.annotations.produced)
            self._check_same_models(self.resumed_from.model)
        else:
            self.folder = create_job_folder(root, FOLDER_PREFIX[self.plan.type])
            self.job.output_dir = str(self.folder.resolve())
            self.job.output_path = display_path(self.folder, root)
            self.store.save(self.job)
        # Rewritten at the end; until then it says what runs (models, seed, request), for a
        # folder whose gateway dies first (gateway.salvage completes it).
        write_manifest(self.folder, self._manifest([], "not finished"))

    def _check_same_models(self, before: dict[str, dict[str, Any]]) -> None:
        """A resumed job's new images must come from the model that made its first ones."""
        for kind, model in before.items():
            now = self.models.get(kind, {}).get("model_id")
            if now is not None and now != model.get("model_id"):
                raise JobFailure(
                    f"cannot resume: the {kind} service now serves {now}, but the job's first {kind}s came from {model.get('model_id')}"
                )

    def _data_schema(self) -> dict[str, Any]:
        """The data file's schema: a unified job's rows also say their image's file."""
        assert self.plan.text is not None
        return with_image_file(self.plan.text.schema) if self.plan.type == "unified" else self.plan.text.schema

    def _read_kept_rows(self) -> list[dict[str, Any]] | None:
        """The rows a resumed job's data file holds, as JSON values; None when it has no file."""
        folder, output_format = Path(self.job.output_dir), self.plan.output_format or "json"
        if not (folder / f"data.{output_format}").exists():
            return None
        try:
            rows = read_rows(folder, output_format, self._data_schema())
        except (OSError, ValueError, KeyError) as err:  # pyarrow's errors are ValueErrors too
            raise JobFailure(f"cannot resume: {self.job.output_path}data.{output_format} cannot be read: {err}") from None
        return [{k: v for k, v in row.items() if k != IMAGE_FILE_COLUMN} for row in rows]

    def _rows_lacking(self) -> int:
        assert self.plan.text is not None
        return max(0, self.plan.text.num_rows - len(self.kept_rows or []))

    async def _generate_rows(self, endpoint: ServiceEndpoint | None) -> None:
        """The job's rows (gateway/rows_phase.py). A resumed job starts from the rows it kept, and
        `endpoint` is None when it lacks none."""
        spec = self.plan.text
        assert spec is not None and self.folder is not None
        self.job.stats.rows_total = spec.num_rows
        write_json_atomic(self.folder / "schema.json", self._data_schema())
        run = RowsRun(
            folder=self.folder,
            output_format=self.plan.output_format or "json",
            unified=self.plan.type == "unified",
            kept=self.kept_rows,
            before=self.resumed_from if self.resuming else None,
            resume=len(self.job.resumes),
            replicas=[] if endpoint is None else self.clients.text.serving_with(endpoint),
            timeout_s=self.settings.stream_inactivity_timeout_s,
            shard_rows=self.settings.shard_rows,
            max_attempts=self.settings.max_attempts,
            book=self._shard_book(),
            seed_rows=self._seed_rows,
            stats=self.job.stats,
            progress=lambda fraction, message: self._progress("rows", fraction, message),
            waiting=lambda waited_s: waiting_for("text", waited_s),
        )
        self.text = RowsPhase(spec, run)
        await self.text.open()
        if self.resuming and "text" in self.resumed_from.model and "text" not in self.models:
            self.models["text"] = self.resumed_from.model["text"]
        began = time.monotonic()
        await self.text.make()
        if endpoint is not None:
            self.timings["text_s"] = round(time.monotonic() - began, 3)
            self.timings["text_service_s"] = round(self.text.summary.elapsed_s, 3)

    async def _generate_tables(self, endpoint: ServiceEndpoint) -> None:
        """A tables job's tables, parents first, over every serving text replica."""
        stats = self.job.stats

        def progress(done: int, total: int, message: str) -> None:
            stats.rows_done, stats.rows_total = done, max(total, self.plan.rows)
            self._progress("rows", done / max(stats.rows_total, 1), message)

        run = TablesRun(
            folder=self.folder,
            output_format=self.plan.output_format or "json",
            replicas=self.clients.text.serving_with(endpoint),
            shard_rows=self.settings.shard_rows,
            timeout_s=self.settings.stream_inactivity_timeout_s,
            resume=len(self.job.resumes),
            resuming=self.resuming,
            progress=progress,
            book=self._shard_book(),
            max_attempts=self.settings.max_attempts,
        )
        self.tables = TablesPhase(self.plan.tables, run)
        began = time.monotonic()
        try:
            await self.tables.run()
        finally:
            self.timings["text_s"] = round(time.monotonic() - began, 3)

    def _shard_book(self) -> ShardBook:
        return ShardBook(self.store.engine, self.job.job_id, len(self.job.resumes), self.store.leases, self.clients.metrics)

    def _seed_rows(self, spec: TextSpec) -> SeedRows:
        """The job's seed rows, drawn as at its submission."""
        try:
            return seed_rows(spec, DatasetStore(self.store.engine), self.job.owner)
        except InvalidRequest as err:  # its dataset was deleted since
            raise JobFailure(f"seed data: {err}") from None

    async def _generate_images(self, endpoint: ServiceEndpoint) -> None:
        spec = self.plan.images
        assert spec is not None and self.folder is not None
        prompts = spec.prompts
        if self.plan.type == "unified":
            # Image i belongs to row i, so there can be no more images than rows.
            rows = self.text.rows if self.text else []
            count = min(spec.num_images, len(rows))
            if count == 0:
                return
            # Each row as its data file holds it (a float column's 5 as 5.0), so that a resumed
            # run, which reads the rows back from that file, formats the same prompts.
            file_rows = [json_value(rows[i], self.plan.text.schema) for i in range(count)]
            prompts = [format_prompt(spec.prompts[i % len(spec.prompts)], file_rows[i]) for i in range(count)]
            spec = dataclasses.replace(spec, num_images=count)
        stats = self.job.stats
        stats.images_total = spec.num_images
        stats.step = stats.total_steps = 0  # a resumed job's are its last run's until its first step
        if self.images is None:
            self.images = ImagesPhase(ImageDatasetWriter(self.folder))
        if self.resuming:
            spec = dataclasses.replace(spec, first_index=self.images.writer.first_missing())
            if spec.first_index >= spec.num_images:
                return  # every image is there; the run stopped before it could say so
        await self._take_image_slot()
        if endpoint.kind not in self.models:  # a unified job that has made its rows
            await self._describe_model(endpoint)
            if self.resumed_from is not None:
                self._check_same_models(self.resumed_from.model)
        began = time.monotonic()
        run = ImagesRun(
            replicas=self.clients.image.serving_with(endpoint),
            timeout_s=self.settings.stream_inactivity_timeout_s,
            shard_images=self.settings.shard_images,
            max_attempts=self.settings.max_attempts,
            book=self._shard_book(),
            stats=stats,
            progress=lambda fraction, message: self._progress("images", fraction, message),
            waiting=lambda waited_s: waiting_for("image", waited_s),
        )
        await self.images.run(spec, prompts, run)
        self.timings["images_s"] = round(time.monotonic() - began, 3)
        self.timings["image_service_s"] = round(self.images.summary.elapsed_s, 3)

    def _progress(self, phase: str, fraction: float, message: str) -> None:
        low, high = PHASES[self.plan.type][phase]
        # 100 is kept for a finished job, so a client polling for 100 never reads unfinished files.
        self.job.progress = min(99, max(self.job.progress, int(low + (high - low) * min(fraction, 1.0))))
        self.job.message = message
        self.store.save_progress(self.job)

    # -- the end --------------------------------------------------------------------------------

    def _finish(self, status: JobState, error: str | None = None, reason: str | None = None, failure: JobFailure | None = None) -> None:
        """Closes the files, writes the manifest and records the outcome, or on a lost replica
        hands the job to its failover. Synchronous on purpose: nothing can cancel it half-way, and
        nobody sees a failed-over job as failed."""
        job = self.job
        try:
            self._close_files()
        except JobFailure as err:
            status, error = "failed", str(err)
        shortfall = self._shortfall()
        reason = "; ".join(part for part in (error or reason, shortfall) if part) or None
        job.move_to(status)
        job.error = error
        job.partial = job.output_dir is not None and (status != "completed" or shortfall is not None)
        self.timings["total_s"] = round(time.monotonic() - (self._started or self._submitted), 3)
        # A stopped job's bar shows what it kept, not the batch it dropped.
        job.progress = 100 if status == "completed" else self._progress_of(
            self._rows_written(), self.images.images_written if self.images else 0
        )
        if self.folder is not None:
            self._write_quality()
            files = [f for f in list_files(self.folder) if f != MANIFEST_FILE]  # the one started at open
            write_manifest(self.folder, self._manifest(files, reason))
            job.files = sorted([*files, MANIFEST_FILE])
        job.message = self._final_message(reason)
        if self.folder is None and self.resuming and job.output_dir is not None and Path(job.output_dir).is_dir():
            job.message += f"; {self._record_untouched(Path(job.output_dir), reason)}"
        if isinstance(failure, ReplicaLost) and self.fail_over is not None and self.fail_over(job, failure):
            return  # queued again as a resume, which saved it
        self.store.save(job)
        log.info("job %s %s%s", job.job_id, status, f": {reason}" if reason else "")

    def _write_quality(self) -> None:
        """quality.json: the rows in the output against what the schema asked for (sdg.quality).
        A job that counted no rows (one that stopped before its rows, or a resumed one before it
        counted the rows it kept) leaves the folder's as it is."""
        report = self.quality or self._report()
        if report is not None:
            write_json_atomic(self.folder / QUALITY_FILE, report)

    def _report(self) -> dict[str, Any] | None:
        """The quality report of the rows counted; one that cannot be made says why, and the job's
        outcome stands."""
        try:
            if self.tables is not None:
                return self.tables.quality()
            return self.text.tally.report() if self.text is not None and self.text.tally is not None else None
        except Exception as err:  # a bug here must not lose the job's outcome
            log.exception("job %s: no quality report", self.job.job_id)
            return {"error": f"{type(err).__name__}: {err}"}

    def _record_untouched(self, folder: Path, reason: str | None) -> str:
        """A resumed job that stopped before it opened its folder (a service it waited for never
        came): the folder holds what its earlier runs kept, as they left it. The job and its
        manifest say so, rather than show no files and no progress. Returns what it keeps, in words."""
        job, manifest = self.job, read_manifest(folder)
        if manifest is not None:  # an unreadable one is left for a person to look at
            manifest.status, manifest.finished_at, manifest.partial, manifest.reason = job.status, job.finished_at, job.partial, reason
            manifest.resumes = [resume.model_dump() for resume in job.resumes]
            write_manifest(folder, manifest)
        job.files = list_files(folder)
        kept = job.resumes[-1]  # a job runs into a folder it did not open only as a resume
        job.progress = self._progress_of(kept.rows_kept or 0, kept.images_kept or 0)
        return f"its folder keeps {kept_in_words(kept, self.plan)}, as before"

    def _progress_of(self, rows: int, images: int) -> int:
        """The progress bar's share for `rows` and `images` of this job's output, each phase by
        its own share."""
        plan = self.plan
        return kept_progress(
            plan.type,
            rows=(rows, plan.rows),
            images=(images, plan.images.num_images if plan.images else 0),
        )

    def _close_files(self) -> None:
        if self.images is not None:
            self.images.close()
        if self.tables is not None:
            self.tables.close()
        if self.text is not None:
            written = self.images.writer.written_indexes if self.images is not None else set()
            self.text.close(lambda rows: paired_rows(rows, written), self._data_schema())

    def _rows_written(self) -> int:
        if self.tables is not None:
            return self.tables.rows_written
        return self.text.written if self.text is not None else 0

    def _shortfall(self) -> str | None:
        """Why the output holds less than was asked for, or None when it is all there (or when
        nothing was written at all)."""
        if self.folder is None:
            return None
        reasons = []
        if self.plan.tables is not None:
            reasons.append(self.tables.shortfall() if self.tables else "no table was made")
        if self.plan.text is not None:
            wanted, got = self.plan.text.num_rows, self._rows_written()
            if got < wanted:
                summary = self.text.summary if self.text else None
                service_reason = summary.reason if summary and summary.reason else ""
                reasons.append(f"{got} of {wanted} rows" + (f" ({service_reason})" if service_reason else ""))
        if self.plan.images is not None:
            wanted = self.plan.images.num_images
            got = self.images.images_written if self.images is not None else 0
            if got < wanted:
                service_reason = self.images.summary.reason if self.images and self.images.summary and self.images.summary.reason else ""
                reasons.append(f"{got} of {wanted} images" + (f" ({service_reason})" if service_reason else ""))
        return "; ".join(filter(None, reasons)) or None

    def _final_message(self, reason: str | None) -> str:
        job = self.job
        if job.status == "completed":
            made = []
            if self.plan.text is not None or self.plan.tables is not None:
                made.append(counted(self._rows_written(), "row"))
            if self.plan.images is not None:
                made.append(counted(self.images.images_written if self.images else 0, "image"))
            message = "completed: " + ", ".join(made) + (f" (partial: {reason})" if reason else "")
        else:
            message = f"{job.status}: {reason}" if reason else job.status
        if failovers(job):
            tried = f"attempt {attempt(job)} of {self.settings.max_attempts}, " if job.status == "failed" else ""
            message += f" ({tried}after {counted(failovers(job), 'failover')})"
        return message

    def _manifest(self, files: list[str], reason: str | None) -> Manifest:
        job, plan = self.job, self.plan
        manifest: dict[str, Any] = {
            "job_id": job.job_id,
            "type": job.type,
            "status": job.status,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "model": self.models,
            "demo_model": any(model["demo_model"] for model in self.models.values()),
            "seed": plan.seed,
            "counts": self._counts(),
            "timings": self.timings,
            "partial": job.partial,
            "reason": reason,
            "output_format": plan.output_format,
            "files": files,
            "request": job.request,
        }
        if job.resumes:
            manifest["resumes"] = [resume.model_dump() for resume in job.resumes]
            manifest["failovers"] = failovers(job)
        shards = [shard.record() for phase in (self.text, self.images, self.tables) if phase for shard in phase.shards if shard.attempts]
        if shards:
            manifest["shards"] = shards
        if self.tables is not None:
            manifest.update(self.tables.manifest())
        if plan.text is not None:
            manifest["schema"] = self._schema_account()
        text = self.text
        if text is not None and text.ledger is not None:
            manifest["constraints"] = {"unique": text.ledger.manifest()}
        if text is not None and text.seed_account is not None:
            manifest["seed_data"] = text.seed_account
        if text is not None and text.summary is not None:
            manifest["distinct_ratio"] = text.summary.distinct_ratio
            manifest["tokens"] = {"generated": text.summary.tokens_generated, "forced": text.summary.tokens_forced}
        if plan.images is not None:
            manifest["annotations"] = self._annotations()
            manifest["images"] = {
                "width": plan.images.width,
                "height": plan.images.height,
                "num_inference_steps": plan.images.num_inference_steps,
                "guidance_scale": plan.images.guidance_scale,
                "scheduler": self.images.summary.scheduler if self.images and self.images.summary else plan.images.scheduler,
                "feature_reuse": plan.images.feature_reuse,
                "prompts_cut": self.images.writer.prompts_cut if self.images else 0,
                "negative_prompt_tokens_dropped": self._negative_prompt_tokens_dropped(),
            }
            notes = self._image_notes()
            if notes:
                manifest["images"]["note"] = "; ".join(notes)
        return Manifest.model_validate(manifest)

    def _schema_account(self) -> dict[str, Any]:
        """How the schema was read (sdg.schema), and what was checked after decoding."""
        spec, summary = self.plan.text, self.text.summary if self.text else None
        assert spec is not None
        account = spec.read.manifest()
        account["optional_rate"] = spec.optional_rate
        if summary is not None:
            account["grammar_compile_s"] = round(summary.compile_s, 4)
            account["rows_rejected_by"] = summary.rejected_by
        return account

    def _image_notes(self) -> list[str]:
        """What a reader of the images should know of how they were made."""
        assert self.plan.images is not None
        notes = []
        if self.plan.images.feature_reuse > 1:
            notes.append(
                f"approximate: the whole UNet ran every {self.plan.images.feature_reuse} steps, its shallow layers reusing "
                "the deep features in between (after DeepCache); the images differ from feature_reuse 1's"
            )
        cut = self.images.writer.prompts_cut if self.images else 0
        if cut:
            notes.append(
                f"the prompts of {counted(cut, 'image')} were longer than the text encoder reads (CLIP: 77 tokens) and were cut: "
                "the words past the cut neither shaped those images nor were annotated (metadata.jsonl: prompt_tokens_dropped)"
            )
        negative_dropped = self._negative_prompt_tokens_dropped()
        if negative_dropped:
            notes.append(
                f"the negative prompt was longer than the text encoder reads (CLIP: 77 tokens): its last {counted(negative_dropped, 'token')} were cut"
            )
        return notes

    def _negative_prompt_tokens_dropped(self) -> int:
        return self.images.summary.negative_prompt_tokens_dropped if self.images and self.images.summary else 0

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        if self.plan.tables is not None:
            counts.update(self.tables.counts() if self.tables else {"requested": self.plan.rows, "generated": 0})
        if self.plan.text is not None:
            summary = self.text.summary if self.text else None
            counts.update(
                requested=self.plan.text.num_rows,
                generated=self._rows_written(),
                invalid_regenerated=summary.rows_invalid if summary else 0,
                duplicates_removed=summary.duplicates_removed if summary else 0,
            )
        if self.plan.images is not None:
            generated = self.images.images_written if self.images else 0
            if self.plan.type == "images":
                counts.update(requested=self.plan.images.num_images, generated=generated)
            else:
                counts.update(images_requested=self.plan.images.num_images, images_generated=generated)
        return counts

    def _annotations(self) -> dict[str, Any]:
        assert self.plan.images is not None
        writer = self.images.writer if self.images else None
        produced = sorted(writer.kinds_produced) if writer else []
        annotations: dict[str, Any] = {
            "requested": self.plan.images.annotations,
            "produced": produced,
            "coco_file": writer.coco_file if writer else None,
            "objects": writer.objects_written if writer else 0,
        }
        if not produced:
            annotations["note"] = "no annotations were produced"
        return annotations
