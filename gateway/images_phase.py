"""ImagesPhase: a job's images into its image dataset, from one image replica, or in shards over
several (gateway/shards.py) when it lacks more than SDG_SHARD_IMAGES. It owns the dataset's writer
and the account of the images the service made."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from gateway.clients import ServiceEndpoint
from gateway.models import JobStats
from gateway.outputs import ImageDatasetWriter
from gateway.plans import ImageSpec
from gateway.results import DenoiseStep, GeneratedImage, ImagesSummary
from gateway.shards import Shard, ShardBook, run_shards
from gateway.streams import generate_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImagesRun:
    """What an images phase needs from the job around it."""

    replicas: list[ServiceEndpoint]  # the job's own first; more than one only when it shards
    timeout_s: float
    shard_images: int
    max_attempts: int  # a shard's, before the job fails
    book: ShardBook  # where its shards' states are kept and counted
    stats: JobStats
    progress: Callable[[float, str], None]  # the share of the job's images done, and what it does
    waiting: Callable[[float], str]  # what it says while its call waits behind others, for so many seconds


class ImagesPhase:
    def __init__(self, writer: ImageDatasetWriter):
        self.writer = writer
        self.summary: ImagesSummary | None = None
        self.shards: list[Shard] = []
        self._first_batch_size = 0

    @property
    def images_written(self) -> int:
        return self.writer.images_written

    async def run(self, spec: ImageSpec, prompts: list[str], run: ImagesRun) -> None:
        """Makes images spec.first_index .. spec.num_images-1 that the dataset lacks."""
        stats, writer = run.stats, self.writer
        kept = stats.images_done = writer.images_written
        wanted = spec.num_images - spec.first_index  # this run's images

        def on_step(step: DenoiseStep) -> None:
            stats.step, stats.total_steps, stats.images_done = step.step, step.total_steps, kept + step.images_done
            self._first_batch_size = self._first_batch_size or max(step.batch_size, 1)
            batches = math.ceil(wanted / self._first_batch_size)
            batch = min(step.images_done // self._first_batch_size + 1, batches)
            done = stats.images_done + step.batch_size * step.step / max(step.total_steps, 1)
            run.progress(done / max(stats.images_total, 1), f"generating images: batch {batch}/{batches}, step {step.step}/{step.total_steps}")

        def on_image(image: GeneratedImage) -> None:
            writer.add(image)
            stats.images_done = writer.images_written
            run.progress(writer.images_written / max(stats.images_total, 1), f"generating images: {writer.images_written}/{stats.images_total} done")

        def on_waiting(waited_s: float) -> None:
            run.progress(writer.images_written / max(stats.images_total, 1), run.waiting(waited_s))

        run.progress(kept / spec.num_images, f"generating images: {kept}/{spec.num_images}")
        if len(run.replicas) > 1 and spec.num_images - kept > run.shard_images:
            self.summary = await self._sharded(spec, prompts, run, on_image, on_waiting)
        else:
            self.summary = await generate_images(run.replicas[0], spec, prompts, run.timeout_s, on_step, on_image, on_waiting)

    async def _sharded(self, spec: ImageSpec, prompts: list[str], run: ImagesRun, on_image, on_waiting) -> ImagesSummary:
        """The images the dataset lacks, in shards of run.shard_images. Image i depends only on the
        seed and i, so a shard is the whole request cut to its indexes, and a shard whose replica
        is lost goes on from its first missing image on another."""
        writer, size = self.writer, run.shard_images
        missing = [i for i in range(spec.first_index, spec.num_images) if i not in writer.written_indexes]
        spans: list[list[int]] = []  # the missing indexes, in contiguous runs of at most `size`
        for i in missing:
            if spans and spans[-1][-1] == i - 1 and len(spans[-1]) < size:
                spans[-1].append(i)
            else:
                spans.append([i])
        shards = self.shards = [Shard(index, len(span), kind="images", first=span[0]) for index, span in enumerate(spans)]
        summaries: list[ImagesSummary] = []

        async def run_shard(replica: ServiceEndpoint, shard: Shard) -> bool:
            span = range(shard.first, shard.first + shard.size)
            first = next(i for i in span if i not in writer.written_indexes)
            call = dataclasses.replace(spec, first_index=first, num_images=span.stop)

            def on_shard_step(step: DenoiseStep) -> None:  # shards interleave: their steps only show they move
                run.stats.step, run.stats.total_steps = step.step, step.total_steps

            def on_shard_image(image: GeneratedImage) -> None:
                on_image(image)
                shard.done = sum(1 for i in span if i in writer.written_indexes)

            summary = await generate_images(replica, call, prompts, run.timeout_s, on_shard_step, on_shard_image, on_waiting)
            summaries.append(summary)
            return not summary.partial

        await run_shards(shards, run.replicas, run_shard, run.book, run.max_attempts)
        return dataclasses.replace(
            summaries[0],
            images_generated=sum(s.images_generated for s in summaries),
            images_requested=len(missing),
            elapsed_s=sum(s.elapsed_s for s in summaries),
            annotations_produced=sorted({kind for s in summaries for kind in s.annotations_produced}),
            partial=any(s.partial for s in summaries),
            reason=next((s.reason for s in summaries if s.reason), ""),
            negative_prompt_tokens_dropped=max(s.negative_prompt_tokens_dropped for s in summaries),
        )

    def close(self) -> None:
        self.writer.close()
