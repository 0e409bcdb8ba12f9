"""Job folders: unique names under the output root, and the small file helpers every writer uses."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path


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


# Read once, at import: os.umask can only be read by setting it, which is not safe among threads.
FILE_MODE = _file_mode()


def write_json_atomic(path: Path, data: object) -> None:
    """Writes JSON so that readers see the old file or the new one, never a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); the manifest and schema are read like data files.
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=2)
            f.write("\n")
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
