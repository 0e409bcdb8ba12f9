"""What the model services produce, as plain dataclasses. Protobuf messages are converted in
streams.py and go no further, so outputs and runner code never see transport types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DetectedObject:
    """A located object as the image service sends it: ready to be a COCO annotation."""

    label: str
    score: float
    bbox: list[float]  # [x, y, width, height] in pixels
    area: float  # the pixels its segmentation covers, which COCOeval sorts objects by
    # COCO uncompressed RLE ({"counts", "size"}) where a mask was asked for, else the box as a polygon.
    segmentation: dict[str, Any] | list[list[float]]
    bbox_asked: bool = True  # "bbox" was asked for; the box is COCO's either way

    @property
    def masked(self) -> bool:
        return isinstance(self.segmentation, dict)

    def coco(self) -> dict[str, Any]:
        """The object as CocoDataset.add takes it."""
        return {"label": self.label, "bbox": self.bbox, "area": self.area, "segmentation": self.segmentation, "score": float(self.score)}


@dataclass(frozen=True)
class GeneratedImage:
    index: int
    prompt: str
    seed: int
    png: bytes
    width: int
    height: int
    objects: list[DetectedObject] = field(default_factory=list)
    caption: str = ""
    # Tokens of the prompt the text encoder could not read (past its context), cut: 0 normally.
    prompt_tokens_dropped: int = 0


@dataclass(frozen=True)
class RowsSummary:
    rows_generated: int
    rows_requested: int
    rows_invalid: int
    duplicates_removed: int
    distinct_ratio: float
    seed: int
    elapsed_s: float
    tokens_generated: int
    tokens_forced: int
    partial: bool
    reason: str
    # Rows thrown away after decoding, by the keyword (or limit) they failed.
    rejected_by: dict[str, int] = field(default_factory=dict)
    compile_s: float = 0.0


@dataclass(frozen=True)
class ImagesSummary:
    images_generated: int
    images_requested: int
    elapsed_s: float
    seed: int
    annotations_produced: list[str]
    partial: bool
    reason: str
    scheduler: str
    negative_prompt_tokens_dropped: int = 0


@dataclass(frozen=True)
class DenoiseStep:
    """One denoising step of one batch finished."""

    step: int
    total_steps: int
    images_done: int
    images_total: int
    batch_size: int
