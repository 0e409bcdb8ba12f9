"""The image engine's inputs and outputs as plain dataclasses; the servicer converts them to and
from protobuf, nothing past it sees a `*_pb2` type."""

from __future__ import annotations

from dataclasses import dataclass

from sdg.limits import ANNOTATION_KINDS, DEFAULT_GUIDANCE, DEFAULT_STEPS
from sdg.streaming import Waiting


class InvalidImageRequest(ValueError):
    """A request the engine cannot honour; `field` names the offending request field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ImageRequest:
    prompts: tuple[str, ...]
    num_images: int = 1
    width: int = 512
    height: int = 512
    negative_prompt: str = ""
    num_inference_steps: int = DEFAULT_STEPS
    guidance_scale: float = DEFAULT_GUIDANCE
    # Job seed; image i uses seed + i. None: the engine draws one and reports it.
    seed: int | None = None
    scheduler: str = "default"
    annotations: tuple[str, ...] = ()
    # Object words to annotate; empty: the object words of each prompt.
    labels: tuple[str, ...] = ()
    # Generate only images first_index..num_images-1, each as the whole request would (its seed
    # and prompt depend on its index alone): what resuming a job that stopped part-way asks for.
    first_index: int = 0
    # Run the whole UNet every `feature_reuse` steps and only its shallow layers on the steps
    # between, on the deep features of the last full step (image_service/reuse.py). 1: every
    # step runs the whole UNet, the exact images. Approximate above 1.
    feature_reuse: int = 1

    @property
    def annotation_kinds(self) -> tuple[str, ...]:
        """The annotations asked for, each once, in ANNOTATION_KINDS order."""
        return tuple(kind for kind in ANNOTATION_KINDS if kind in self.annotations)

    @property
    def images_wanted(self) -> int:
        """How many images this call generates."""
        return self.num_images - self.first_index

    def prompt_for(self, index: int) -> str:
        return self.prompts[index % len(self.prompts)]


@dataclass(frozen=True)
class StepProgress:
    step: int  # steps finished in the current batch, 1-based
    total_steps: int
    images_done: int  # images finished in the whole call
    images_total: int
    batch_size: int


@dataclass(frozen=True)
class BoundingBox:
    """Pixels, COCO order: top-left corner, then size."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class RunLengthMask:
    """COCO uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""

    counts: tuple[int, ...]
    height: int
    width: int


@dataclass(frozen=True)
class ObjectAnnotation:
    label: str
    score: float
    area: float  # the attention mask's pixels
    coco_bbox: BoundingBox  # around the mask, whichever annotations were asked for
    bbox: BoundingBox | None = None  # coco_bbox, when "bbox" was asked for
    segmentation: RunLengthMask | None = None

    @property
    def coco_area(self) -> float:
        """The pixels of the COCO segmentation, as COCOeval reads `area`: the mask's, or the box's."""
        return self.area if self.segmentation is not None else self.coco_bbox.width * self.coco_bbox.height

    @property
    def coco_polygon(self) -> tuple[float, ...]:
        """Without a mask, the box as COCO's polygon segmentation; empty with one."""
        if self.segmentation is not None:
            return ()
        box = self.coco_bbox
        right, bottom = box.x + box.width, box.y + box.height
        return (box.x, box.y, right, box.y, right, bottom, box.x, bottom)


@dataclass(frozen=True)
class GeneratedImage:
    index: int
    prompt: str
    seed: int
    png: bytes
    width: int
    height: int
    objects: tuple[ObjectAnnotation, ...] = ()
    caption: str = ""
    # Tokens of the prompt past the text encoder's context, cut before encoding: 0, the whole
    # prompt conditioned the image.
    prompt_tokens_dropped: int = 0


@dataclass(frozen=True)
class ImageSummary:
    images_generated: int
    images_requested: int
    elapsed_s: float
    seed: int
    scheduler: str
    annotations_produced: tuple[str, ...] = ()
    partial: bool = False
    reason: str = ""
    negative_prompt_tokens_dropped: int = 0
    error: str = ""  # why the engine failed part-way; empty when the call ended as planned


# What ImageEngine.generate emits: finished images in index order, on the engine's model thread
# while it denoises and on the calling thread for the last ones, never from two at once.
ImageEvent = Waiting | StepProgress | GeneratedImage

