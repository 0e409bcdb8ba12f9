"""Request limits and vocabularies that the gateway checks at the door and the services check again,
defined once so that a job the gateway accepts is one the services take."""

from __future__ import annotations

from typing import Literal, get_args

# Text.
MAX_ROWS = 1_000_000  # rows per call; the text service's default SDG_TEXT_MAX_ROWS
MAX_INSTRUCTIONS_CHARS = 4000

# Images.
MAX_IMAGES = 100_000
MAX_INFERENCE_STEPS = 500
DEFAULT_STEPS = 30
DEFAULT_GUIDANCE = 7.5
MAX_GUIDANCE = 50.0
# The larger, the further the images move from the exact ones; 10 is a generous limit.
MAX_FEATURE_REUSE = 10
# Width and height alike: multiples of RESOLUTION_STEP, within the bounds both sides' settings default to.
RESOLUTION_STEP = 8
MIN_RESOLUTION = 64
MAX_RESOLUTION = 1024

# Seeds: image i of a job gets seed + i. The gateway keeps every image's seed within int64, so it
# loads as an integer in pandas, Arrow and `datasets`; torch generators take unsigned 64-bit seeds.
MAX_SEED = 2**63 - 1
MAX_GENERATOR_SEED = 2**64 - 1

Scheduler = Literal["default", "dpm++", "euler_a"]
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)
AnnotationKind = Literal["bbox", "segmentation", "caption"]
ANNOTATION_KINDS: tuple[str, ...] = get_args(AnnotationKind)


def side_problem(side: int, low: int, high: int) -> str | None:
    """Why `side` pixels cannot be an image's width or height within low..high; None when it can."""
    if side % RESOLUTION_STEP:
        return f"{side} is not a multiple of {RESOLUTION_STEP}"
    if not low <= side <= high:
        return f"{side} is outside {low}..{high}"
    return None
