"""JobProgressBar: a tqdm bar that follows a job's /status: rows and images done of their total,
with the job's message as the postfix."""

from __future__ import annotations

from tqdm.auto import tqdm

from sdg_client.status import JobStatus

UNITS = {"text": "row", "images": "image", "unified": "item"}


def done_of_total(status: JobStatus) -> tuple[int, int]:
    """What the job has made of what it will make; a unified job counts its rows and its images."""
    stats = status.stats
    if status.type == "text":
        return stats.rows_done, stats.rows_total
    if status.type == "images":
        return stats.images_done, stats.images_total
    return stats.rows_done + stats.images_done, stats.rows_total + stats.images_total


class JobProgressBar:
    def __init__(self, job_id: str, enabled: bool = True):
        self._job_id = job_id
        self._enabled = enabled
        self._bar: tqdm | None = None

    def show(self, status: JobStatus) -> None:
        done, total = done_of_total(status)
        if self._bar is None:
            # Made at the first status, so that it starts with the job's unit rather than tqdm's "it".
            self._bar = tqdm(
                desc=self._job_id, total=total or None, unit=UNITS.get(status.type, "item"), disable=not self._enabled, dynamic_ncols=True
            )
        # The totals are 0 until the job starts: an unknown total, not an empty one.
        self._bar.total = total or None
        self._bar.n = done
        self._bar.set_postfix_str(status.message, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> JobProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
