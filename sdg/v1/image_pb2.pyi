from sdg.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateImagesRequest(_message.Message):
    __slots__ = ("prompts", "num_images", "width", "height", "negative_prompt", "num_inference_steps", "guidance_scale", "seed", "scheduler", "annotations", "labels", "first_index", "feature_reuse")
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    NUM_IMAGES_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    FEATURE_REUSE_FIELD_NUMBER: _ClassVar[int]
    prompts: _containers.RepeatedScalarFieldContainer[str]
    num_images: int
    width: int
    height: int
    negative_prompt: str
    num_inference_steps: int
    guidance_scale: float
    seed: int
    scheduler: str
    annotations: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.RepeatedScalarFieldContainer[str]
    first_index: int
    feature_reuse: int
    def __init__(self, prompts: _Optional[_Iterable[str]] = ..., num_images: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., negative_prompt: _Optional[str] = ..., num_inference_steps: _Optional[int] = ..., guidance_scale: _Optional[float] = ..., seed: _Optional[int] = ..., scheduler: _Optional[str] = ..., annotations: _Optional[_Iterable[str]] = ..., labels: _Optional[_Iterable[str]] = ..., first_index: _Optional[int] = ..., feature_reuse: _Optional[int] = ...) -> None: ...

class GenerateImagesResponse(_message.Message):
    __slots__ = ("step", "image", "summary", "waiting")
    STEP_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    step: StepProgress
    image: GeneratedImage
    summary: ImageSummary
    waiting: _common_pb2.Waiting
    def __init__(self, step: _Optional[_Union[StepProgress, _Mapping]] = ..., image: _Optional[_Union[GeneratedImage, _Mapping]] = ..., summary: _Optional[_Union[ImageSummary, _Mapping]] = ..., waiting: _Optional[_Union[_common_pb2.Waiting, _Mapping]] = ...) -> None: ...

class StepProgress(_message.Message):
    __slots__ = ("step", "total_steps", "images_done", "images_total", "batch_size")
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_DONE_FIELD_NUMBER: _ClassVar[int]
    IMAGES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    step: int
    total_steps: int
    images_done: int
    images_total: int
    batch_size: int
    def __init__(self, step: _Optional[int] = ..., total_steps: _Optional[int] = ..., images_done: _Optional[int] = ..., images_total: _Optional[int] = ..., batch_size: _Optional[int] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ...) -> None: ...

class RunLengthMask(_message.Message):
    __slots__ = ("counts", "height", "width")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    height: int
    width: int
    def __init__(self, counts: _Optional[_Iterable[int]] = ..., height: _Optional[int] = ..., width: _Optional[int] = ...) -> None: ...

class ObjectAnnotation(_message.Message):
    __slots__ = ("label", "bbox", "segmentation", "score", "area", "coco_bbox", "coco_area", "coco_polygon")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    BBOX_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    AREA_FIELD_NUMBER: _ClassVar[int]
    COCO_BBOX_FIELD_NUMBER: _ClassVar[int]
    COCO_AREA_FIELD_NUMBER: _ClassVar[int]
    COCO_POLYGON_FIELD_NUMBER: _ClassVar[int]
    label: str
    bbox: BoundingBox
    segmentation: RunLengthMask
    score: float
    area: float
    coco_bbox: BoundingBox
    coco_area: float
    coco_polygon: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, label: _Optional[str] = ..., bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., segmentation: _Optional[_Union[RunLengthMask, _Mapping]] = ..., score: _Optional[float] = ..., area: _Optional[float] = ..., coco_bbox: _Optional[_Union[BoundingBox, _Mapping]] = ..., coco_area: _Optional[float] = ..., coco_polygon: _Optional[_Iterable[float]] = ...) -> None: ...

class GeneratedImage(_message.Message):
    __slots__ = ("index", "prompt", "seed", "png", "width", "height", "objects", "caption", "prompt_tokens_dropped")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    index: int
    prompt: str
    seed: int
    png: bytes
    width: int
    height: int
    objects: _containers.RepeatedCompositeFieldContainer[ObjectAnnotation]
    caption: str
    prompt_tokens_dropped: int
    def __init__(self, index: _Optional[int] = ..., prompt: _Optional[str] = ..., seed: _Optional[int] = ..., png: _Optional[bytes] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., objects: _Optional[_Iterable[_Union[ObjectAnnotation, _Mapping]]] = ..., caption: _Optional[str] = ..., prompt_tokens_dropped: _Optional[int] = ...) -> None: ...

class ImageSummary(_message.Message):
    __slots__ = ("images_generated", "images_requested", "elapsed_s", "seed", "annotations_produced", "partial", "reason", "scheduler", "negative_prompt_tokens_dropped", "error")
    IMAGES_GENERATED_FIELD_NUMBER: _ClassVar[int]
    IMAGES_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_S_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_PRODUCED_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_TOKENS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    images_generated: int
    images_requested: int
    elapsed_s: float
    seed: int
    annotations_produced: _containers.RepeatedScalarFieldContainer[str]
    partial: bool
    reason: str
    scheduler: str
    negative_prompt_tokens_dropped: int
    error: str
    def __init__(self, images_generated: _Optional[int] = ..., images_requested: _Optional[int] = ..., elapsed_s: _Optional[float] = ..., seed: _Optional[int] = ..., annotations_produced: _Optional[_Iterable[str]] = ..., partial: _Optional[bool] = ..., reason: _Optional[str] = ..., scheduler: _Optional[str] = ..., negative_prompt_tokens_dropped: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
