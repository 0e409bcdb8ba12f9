"""The image dataset of a job: images/image_00000.png…, images/metadata.jsonl (so that
`datasets.load_dataset("imagefolder", data_dir=…/images)` loads it with its prompts, seeds,
objects and captions) and, only when objects were annotated, annotations/annotations.json in COCO
format with pixel bounding boxes and uncompressed RLE masks."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from gateway.outputs.folders import Spool, complete_lines, json_lines, spooled, write_json_atomic, write_lines_atomic
from gateway.results import GeneratedImage

IMAGES_DIR = "images"
COCO_FILE = "annotations/annotations.json"
COCO_SPOOL = ".coco.jsonl"  # each image's COCO entries until close() writes COCO_FILE


def image_file(index: int) -> str:
    """The image's path relative to the job folder, as the unified data file's image_file column."""
    return f"{IMAGES_DIR}/image_{index:05d}.png"


class CocoDataset:
    """COCO images, annotations and categories as images arrive: ids from 1, categories in the
    order their labels first appear."""

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.categories: dict[str, int] = {}

    def add(self, image: dict[str, Any], objects: list[dict[str, Any]]) -> None:
        """`image` as COCO lists it; `objects` with label, bbox, area, segmentation and score."""
        self.images.append(image)
        for obj in objects:
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image["id"],
                    "category_id": self.categories.setdefault(obj["label"], len(self.categories) + 1),
                    "bbox": obj["bbox"],
                    "area": obj["area"],
                    "segmentation": obj["segmentation"],
                    "score": obj["score"],
                    "iscrowd": 0,
                }
            )

    def write(self, path: Path) -> None:
        write_json_atomic(
            path,
            {
                "info": {
                    "description": "SDG synthetic images; objects located from the diffusion model's cross-attention",
                    "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
                "licenses": [],
                "images": self.images,
                "annotations": self.annotations,
                "categories": [{"id": i, "name": name, "supercategory": "object"} for name, i in self.categories.items()],
            },
        )


class KeptImage(NamedTuple):
    """A finished image of a stopped job's folder: its COCO image entry, its objects as
    CocoDataset.add takes them, its prompt's tokens cut by the text encoder, and its line of
    metadata.jsonl."""

    coco_image: dict[str, Any]
    objects: list[dict[str, Any]]
    prompt_tokens_dropped: int
    metadata_line: str


def existing_images(folder: Path) -> list[KeptImage]:
    """The finished images of a job folder (a stopped job's, closed or salvaged), in metadata
    order. An image is kept only whole: its PNG is there, and the COCO file has the objects its
    metadata lists. One whose PNG or COCO entries were lost (deleted by hand, say) is left out,
    so that a resume makes it again rather than finish short."""
    metadata = folder / IMAGES_DIR / "metadata.jsonl"
    if not metadata.exists():
        return []
    coco = {"images": [], "annotations": [], "categories": []}
    try:
        coco = json.loads((folder / COCO_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # none (no objects, or lost), or unreadable
        pass
    names = {category["id"]: category["name"] for category in coco["categories"]}
    objects: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        objects.setdefault(ann["image_id"], []).append(
            {key: ann[key] for key in ("bbox", "area", "segmentation", "score")} | {"label": names[ann["category_id"]]}
        )
    found, seen = [], set()
    for line in json_lines(metadata.read_text(encoding="utf-8")):
        record = json.loads(line)
        image_id = image_index(record["file_name"]) + 1
        listed = len((record.get("objects") or {}).get("bbox", []))
        whole = (metadata.parent / record["file_name"]).is_file() and len(objects.get(image_id, [])) == listed
        if not whole or image_id in seen:
            continue
        seen.add(image_id)
        entry = {"id": image_id, "file_name": record["file_name"], "width": record["width"], "height": record["height"]}
        # Folders written before the column existed: their prompts were cut too, but unrecorded.
        found.append(KeptImage(entry, objects.get(image_id, []), record.get("prompt_tokens_dropped", 0), line))
    return found


def image_index(file_name: str) -> int:
    """The index in an image's file name ("image_00007.png": 7)."""
    return int(file_name.removeprefix("image_").removesuffix(".png"))


class ImageDatasetWriter:
    """Writes images as they arrive; close() writes the COCO file when there is anything in it.
    Until then each image's COCO entries are also in a hidden JSON Lines spool, from which
    salvage_images() writes the COCO file if the process dies first.

    `resume=True` continues the dataset a stopped job left in `folder`: its images stay, and the
    COCO file is written again with theirs and the new ones. Closed, both list images by index."""

    def __init__(self, folder: Path, resume: bool = False):
        self.folder = folder
        self.images_dir = folder / IMAGES_DIR
        self.images_dir.mkdir(parents=True, exist_ok=True)
        self.written_indexes: set[int] = set()
        self.coco_file: str | None = None
        # What the service actually delivered, which may be less than was asked for.
        self.kinds_produced: set[str] = set()
        kept = existing_images(folder) if resume else []
        if resume:  # the metadata lists only whole images, each once, before new ones follow
            write_lines_atomic(self.images_dir / "metadata.jsonl", [image.metadata_line for image in kept])
        self._coco_spool = Spool(folder / COCO_SPOOL, [{"image": image.coco_image, "objects": image.objects} for image in kept])
        # Each image's COCO entries and metadata line by index: images of several shards arrive
        # interleaved, and close() lists them in index order.
        self._entries: dict[int, tuple[dict[str, Any], list[dict[str, Any]], str]] = {}
        self._in_order, self._last = True, -1
        for image in kept:
            self._keep(image.coco_image["id"] - 1, image.coco_image, image.objects, image.metadata_line)
        self.images_written = len(kept)  # 0 for a new dataset
        # Images whose prompt the text encoder read only in part.
        self.prompts_cut = sum(1 for image in kept if image.prompt_tokens_dropped)
        self._metadata = (self.images_dir / "metadata.jsonl").open("a" if resume else "w", encoding="utf-8")

    def first_missing(self) -> int:
        """The lowest image index not in the dataset."""
        return next(i for i in range(len(self.written_indexes) + 1) if i not in self.written_indexes)

    def add(self, image: GeneratedImage) -> str:
        """Writes one image and its metadata; returns its path relative to the job folder. An
        image the dataset already has is left as it is."""
        relative = image_file(image.index)
        if image.index in self.written_indexes:
            return relative
        path = self.folder / relative
        # Written under a temporary name first: a PNG under its final name is always whole.
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(image.png)
        os.replace(tmp, path)

        located = [obj.coco() for obj in image.objects]
        record = {
            "file_name": path.name,
            "prompt": image.prompt,
            "seed": image.seed,
            "width": image.width,
            "height": image.height,
            # The Hugging Face object-detection layout: parallel lists per image.
            "objects": {
                "bbox": [obj.bbox for obj in image.objects],
                "category": [obj.label for obj in image.objects],
                "score": [round(obj.score, 4) for obj in image.objects],
                # The COCO file's area of each object (a loader that turns these lists into COCO
                # annotations gets what COCOeval expects).
                "area": [obj.area for obj in image.objects],
            },
            "caption": image.caption or None,
            # Above 0, the prompt's end was cut before encoding: it did not shape the image.
            "prompt_tokens_dropped": image.prompt_tokens_dropped,
        }
        coco_image = {"id": image.index + 1, "file_name": path.name, "width": image.width, "height": image.height}  # ids from 1
        self._coco_spool.write([{"image": coco_image, "objects": located}])
        # The metadata line last: an image it lists is whole, with its COCO entries spooled.
        line = json.dumps(record, ensure_ascii=False)
        self._metadata.write(line + "\n")
        self._metadata.flush()
        self._keep(image.index, coco_image, located, line + "\n")
        self.images_written += 1
        self.prompts_cut += bool(image.prompt_tokens_dropped)
        if image.caption:
            self.kinds_produced.add("caption")
        if any(obj.bbox_asked for obj in image.objects):
            self.kinds_produced.add("bbox")
        if any(obj.masked for obj in image.objects):
            self.kinds_produced.add("segmentation")
        return relative

    def _keep(self, index: int, coco_image: dict[str, Any], objects: list[dict[str, Any]], line: str) -> None:
        self._entries[index] = (coco_image, objects, line)
        self.written_indexes.add(index)
        self._in_order, self._last = self._in_order and index > self._last, max(index, self._last)

    @property
    def objects_written(self) -> int:
        return sum(len(objects) for _, objects, _ in self._entries.values())

    def close(self) -> None:
        if self._metadata.closed:
            return
        self._metadata.close()
        ordered = [self._entries[i] for i in sorted(self._entries)]
        if not self._in_order:
            write_lines_atomic(self.images_dir / "metadata.jsonl", [line for _, _, line in ordered])
        coco = CocoDataset()
        for coco_image, objects, _ in ordered:
            coco.add(coco_image, objects)
        self._coco_spool.discard()
        # An annotations file without annotations would claim a labelling that does not exist.
        if coco.annotations:
            coco.write(self.folder / COCO_FILE)
            self.coco_file = COCO_FILE

    def __enter__(self) -> ImageDatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def salvage_images(folder: Path) -> set[int]:
    """The image dataset a job's dead process left behind, made loadable: a metadata line being
    written is dropped, and so is a PNG being written (under its temporary name) or written but
    not yet listed (imagefolder wants every image in the metadata); the COCO file is written
    from its spool, for the images kept. Returns the indexes of the images kept."""
    images_dir = folder / IMAGES_DIR
    metadata = images_dir / "metadata.jsonl"
    kept = b""
    if metadata.exists():
        kept = complete_lines(metadata)
        metadata.write_bytes(kept)
    listed = {json.loads(line)["file_name"] for line in json_lines(kept.decode("utf-8"))}
    for path in images_dir.glob("*"):
        if path.name != "metadata.jsonl" and path.name not in listed:
            path.unlink()
    spool = folder / COCO_SPOOL
    if spool.exists():
        coco = CocoDataset()
        for entry in spooled(spool):
            if entry["image"]["file_name"] in listed:
                coco.add(entry["image"], entry["objects"])
        if coco.annotations:
            coco.write(folder / COCO_FILE)
        spool.unlink()
    return {image_index(name) for name in listed}
