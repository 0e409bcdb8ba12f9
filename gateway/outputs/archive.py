"""A finished job's folder as one ZIP file, streamed while it is written: a dataset of thousands
of images downloads in one request, and neither the archive nor any file in it is held in
memory whole."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

# Already compressed: deflating them again costs time and saves nothing.
STORED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".parquet"})
CHUNK = 1 << 20


class _Chunks(io.RawIOBase):
    """A write-only, unseekable stream that keeps what is written until `take` hands it on.
    zipfile writes to such a stream with data descriptors after each file."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def zip_folder(folder: Path, files: list[str]) -> Iterator[bytes]:
    """The ZIP bytes of `files` (paths relative to `folder`), each under `<folder name>/`, in
    pieces of about CHUNK bytes."""
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name in files:
            path = folder / name
            info = zipfile.ZipInfo.from_file(path, arcname=f"{folder.name}/{name}")
            info.compress_type = zipfile.ZIP_STORED if path.suffix.lower() in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            # ZIP64 records for a file past 2 GiB: zipfile must know before it writes the header.
            with path.open("rb") as source, archive.open(info, "w", force_zip64=info.file_size > zipfile.ZIP64_LIMIT) as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
