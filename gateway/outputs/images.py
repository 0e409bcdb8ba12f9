"""The image dataset of a job: images/image_00000.png…, images/metadata.jsonl (so that
`datasets.load_dataset("imagefolder", data_dir=…/images)` loads it with its prompts, seeds,
objects and captions) and, only when objects were annotated, annotations/annotations.json in COCO
format with pixel bounding boxes and uncompressed RLE masks."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gateway.outputs.folders import write_json_atomic
from gateway.outputs.tables import complete_lines
from gateway.results import DetectedObject, GeneratedImage, RunLength

IMAGES_DIR = "images"
COCO_FILE = "annotations/annotations.json"


def image_file(index: int) -> str:
    """The image's path relative to the job folder, as the unified data file's image_file column."""
    return f"{IMAGES_DIR}/image_{index:05d}.png"


def mask_bbox(mask: RunLength) -> list[float]:
    """[x, y, w, h] of the set pixels of a column-major RLE mask; zeros when the mask is empty."""
    flat = np.zeros(mask.height * mask.width, dtype=bool)
    position, value = 0, False
    for run in mask.counts:
        if value:
            flat[position : position + run] = True
        position += run
        value = not value
    rows, cols = np.nonzero(flat.reshape(mask.width, mask.height).T)
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols.min()), float(rows.min()), float(cols.max() - cols.min() + 1), float(rows.max() - rows.min() + 1)]


def object_bbox(obj: DetectedObject) -> list[float] | None:
    if obj.bbox is not None:
        return list(obj.bbox)
    if obj.mask is not None:
        return mask_bbox(obj.mask)
    return None


class ImageDatasetWriter:
    """Writes images as they arrive; close() writes the COCO file when there is anything in it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.images_dir = folder / IMAGES_DIR
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self._metadata = (self.images_dir / "metadata.jsonl").open("w", encoding="utf-8")
        self._coco_images: list[dict[str, Any]] = []
        self._coco_annotations: list[dict[str, Any]] = []
        self._categories: dict[str, int] = {}
        self.images_written = 0
        self.written_indexes: set[int] = set()
        self.coco_file: str | None = None
        # What the service actually delivered, which may be less than was asked for.
        self.kinds_produced: set[str] = set()

    def add(self, image: GeneratedImage) -> str:
        """Writes one image and its metadata; returns its path relative to the job folder."""
        relative = image_file(image.index)
        path = self.folder / relative
        # Written under a temporary name first: a PNG under its final name is always whole.
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(image.png)
        os.replace(tmp, path)

        objects = [(obj, object_bbox(obj)) for obj in image.objects]
        objects = [(obj, bbox) for obj, bbox in objects if bbox is not None]
        record = {
            "file_name": path.name,
            "prompt": image.prompt,
            "seed": image.seed,
            "width": image.width,
            "height": image.height,
            # The Hugging Face object-detection layout: parallel lists per image.
            "objects": {
                "bbox": [bbox for _, bbox in objects],
                "category": [obj.label for obj, _ in objects],
                "score": [round(obj.score, 4) for obj, _ in objects],
                "area": [obj.area for obj, _ in objects],
            },
            "caption": image.caption or None,
        }
        self._metadata.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._metadata.flush()
        self._add_coco(image, path.name, objects)
        self.images_written += 1
        self.written_indexes.add(image.index)
        if image.caption:
            self.kinds_produced.add("caption")
        if any(obj.bbox is not None for obj in image.objects):
            self.kinds_produced.add("bbox")
        if any(obj.mask is not None for obj in image.objects):
            self.kinds_produced.add("segmentation")
        return relative

    def _add_coco(self, image: GeneratedImage, file_name: str, objects: list[tuple[DetectedObject, list[float]]]) -> None:
        image_id = image.index + 1  # COCO ids start at 1
        self._coco_images.append({"id": image_id, "file_name": file_name, "width": image.width, "height": image.height})
        for obj, bbox in objects:
            category_id = self._categories.setdefault(obj.label, len(self._categories) + 1)
            x, y, w, h = bbox
            if obj.mask is not None:
                segmentation: Any = {"counts": list(obj.mask.counts), "size": [obj.mask.height, obj.mask.width]}
            else:
                # Without a mask the box is the segmentation, as COCO tools expect one per annotation.
                segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            self._coco_annotations.append(
                {
                    "id": len(self._coco_annotations) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": bbox,
                    "area": float(obj.area) if obj.area > 0 else float(w * h),
                    "segmentation": segmentation,
                    "score": float(obj.score),
                    "iscrowd": 0,
                }
            )

    @property
    def objects_written(self) -> int:
        return len(self._coco_annotations)

    def close(self) -> None:
        if self._metadata.closed:
            return
        self._metadata.close()
        # An annotations file without annotations would claim a labelling that does not exist.
        if not self._coco_annotations:
            return
        write_json_atomic(
            self.folder / COCO_FILE,
            {
                "info": {
                    "description": "SDG synthetic images; objects located from the diffusion model's cross-attention",
                    "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
                "licenses": [],
                "images": self._coco_images,
                "annotations": self._coco_annotations,
                "categories": [{"id": i, "name": name, "supercategory": "object"} for name, i in self._categories.items()],
            },
        )
        self.coco_file = COCO_FILE

    def __enter__(self) -> ImageDatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def salvage_images(folder: Path) -> set[int]:
    """The image dataset a job's dead process left behind, made loadable: a metadata line being
    written is dropped, and so is a PNG being written (under its temporary name) or written but
    not yet listed (imagefolder wants every image in the metadata). Returns the indexes of the
    images kept. The COCO file is written at the end only, so there is none."""
    images_dir = folder / IMAGES_DIR
    metadata = images_dir / "metadata.jsonl"
    kept = complete_lines(metadata) if metadata.exists() else b""
    if metadata.exists():
        metadata.write_bytes(kept)
    listed = {json.loads(line)["file_name"] for line in kept.decode("utf-8").splitlines()}
    for path in images_dir.glob("*"):
        if path.name != "metadata.jsonl" and path.name not in listed:
            path.unlink()
    return {int(name.removeprefix("image_").removesuffix(".png")) for name in listed}
