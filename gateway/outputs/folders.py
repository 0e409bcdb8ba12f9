"""Job folders: unique names under the output root, and the small file helpers every writer uses."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def create_job_folder(root: Path, prefix: str, now: datetime | None = None) -> Path:
    """Creates `<prefix>_YYYYMMDD_HHMMSS` under root with an exclusive mkdir; when another job took
    that name in the same second, tries `_2`, `_3`… so two jobs never share a folder, even across
    processes writing to the same root."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d_%H%M%S")
    base = f"{prefix}_{stamp}"
    suffix = 1
    while True:
        folder = root / (base if suffix == 1 else f"{base}_{suffix}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            suffix += 1


def display_path(folder: Path, configured_root: Path) -> str:
    """The folder as SEED.md shows it: `generated_data/text_data_…/` when the configured root is
    relative (it is relative to the gateway's working directory), the absolute path otherwise."""
    return f"{configured_root / folder.name}/"


def _file_mode() -> int:
    """The mode open() gives a new file here: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


QUALITY_FILE = "quality.json"  # a text job's report beside its manifest (sdg.quality)

# Read once, at import: os.umask can only be read by setting it, which is not safe among threads.
FILE_MODE = _file_mode()


def write_json_atomic(path: Path, data: object) -> None:
    """Writes JSON so that readers see the old file or the new one, never a half-written one."""

    def write(f) -> None:
        json.dump(data, f, ensure_ascii=False, indent=2)
        f.write("\n")

    _replace_atomically(path, write)


def write_lines_atomic(path: Path, lines: list[str]) -> None:
    """Writes text lines (each ending in a newline) as write_json_atomic writes JSON."""
    _replace_atomically(path, lambda f: f.writelines(lines))


def _replace_atomically(path: Path, write) -> None:
    """Fills a hidden temp file beside `path` with write(file), then renames it over `path`: a
    process killed meanwhile leaves the old file (and a hidden temp file that list_files skips)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); the manifest and schema are read like data files.
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def list_files(folder: Path) -> list[str]:
    """Every file under folder as a sorted relative POSIX path, skipping hidden temp files."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    )


def complete_lines(path: Path, terminator: bytes = b"\n") -> bytes:
    """The file's bytes up to and including its last `terminator`: a line a dying process was
    writing is dropped."""
    data = path.read_bytes()
    end = data.rfind(terminator)
    return data[: end + len(terminator)] if end >= 0 else b""


class Spool:
    """A hidden JSON Lines file beside what a writer only completes at close() (a Parquet footer,
    a unified job's data file, the COCO file): one line per item, flushed as written, so that
    gateway.salvage can finish the job's output from it if the process dies first."""

    def __init__(self, path: Path, items: list = ()):
        """A new spool at `path`, holding `items` already (a resumed writer's kept ones). Salvage
        takes a spool it finds for the whole output, so one holding kept items appears only
        once it holds all of them: a crash while it is filled leaves the kept files as they were."""
        self.path = path
        if items:
            _replace_atomically(path, lambda f: _write_lines(f, items))
            self._file = path.open("a", encoding="utf-8")
        else:
            self._file = path.open("w", encoding="utf-8")

    def write(self, items: list) -> None:
        _write_lines(self._file, items)
        self._file.flush()

    def discard(self) -> None:
        """The writer finished: the spool is not needed."""
        self._file.close()
        self.path.unlink(missing_ok=True)


async def opened_off_loop(open_files: Callable[[], Any]) -> Any:
    """open_files() on a worker thread: opening a resumed job's files parses them (and writes a
    Parquet file anew), seconds for a large job, and the event loop keeps serving meanwhile. A
    cancellation that arrives first waits for it, so that whatever it opened is closed like the
    rest; `open_files` keeps what it opens where the job's end will find it."""
    task = asyncio.ensure_future(asyncio.to_thread(open_files))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def shard_spool(folder: Path, stem: str, shard: int) -> Path:
    """Where a shard's rows wait, hidden, for the shards before it (gateway/shards.py InOrder)."""
    return folder / f".{stem}.shard{shard:05d}.jsonl"


def waiting_rows(folder: Path, stem: str) -> list:
    """The whole rows of the shard spools a dead process left for `stem`, in shard order; the
    spools are removed, so call it once the rows are written elsewhere."""
    spools = sorted(folder.glob(f".{stem}.shard*.jsonl"))
    rows = [row for spool in spools for row in spooled(spool)]
    for spool in spools:
        spool.unlink()
    return rows


def json_lines(text: str) -> list[str]:
    """The lines of JSON Lines text, each with its newline. Split on "\n" alone: JSON written with
    ensure_ascii=False holds U+2028 or U+0085 raw (a prompt may), and str.splitlines splits there."""
    return [f"{line}\n" for line in text.split("\n") if line.strip()]


def _write_lines(file, items: list) -> None:
    file.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def spooled(path: Path) -> list:
    """The whole items of a spool a dead process left."""
    return [json.loads(line) for line in json_lines(complete_lines(path).decode("utf-8"))]
