"""The work done on a decoded image off the denoising thread: PNG encoding and turning its label
heatmaps into object annotations. Runs in the engine's thread pool (Pillow's encoder releases the
GIL). No torch op runs there: a torch CPU op in a pool thread starts an OpenMP team of its own,
whose spinning workers then compete with the denoising thread for cores (measured on the tiny
model: plain generation 55% slower for the rest of the process after one traced run). The
heatmaps are upsampled on the engine's thread and device instead (`upsampled_heatmaps`)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from image_service.annotations import annotate_object
from image_service.types import GeneratedImage


@dataclass
class DecodedImage:
    index: int
    prompt: str
    seed: int
    pixels: np.ndarray  # (height, width, 3) uint8
    # label -> its attention heatmap at image size (upsampled_heatmaps), for the labels in the prompt.
    heatmaps: dict[str, np.ndarray]
    want_bbox: bool
    want_segmentation: bool
    caption: str
    prompt_tokens_dropped: int = 0


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def upsampled_heatmaps(
    token_maps: torch.Tensor | None, label_positions: dict[str, list[int]], height: int, width: int
) -> tuple[list[str], torch.Tensor | None]:
    """Each label's attention map at image size, (labels, height, width) float32 on the maps'
    device: its tokens' maps summed, upsampled bilinearly. `token_maps` is one image's (tokens,
    h, w) maps, map k for token k+1. Queues device work only; nothing waits for it."""
    if token_maps is None or not label_positions:
        return [], None
    labels = list(label_positions)
    # Indexed with Python ints (views): a list index is a host tensor, copied to the GPU with a
    # wait for everything queued, the batch's whole denoising.
    per_label = torch.stack([torch.stack([token_maps[p - 1] for p in label_positions[label]]).sum(dim=0) for label in labels])
    return labels, F.interpolate(per_label[None].float(), size=(height, width), mode="bilinear", align_corners=False)[0]


def finish_image(decoded: DecodedImage) -> GeneratedImage:
    objects = []
    for label, heatmap in decoded.heatmaps.items():
        annotation = annotate_object(label, heatmap, decoded.want_bbox, decoded.want_segmentation)
        if annotation is not None:
            objects.append(annotation)
    height, width = decoded.pixels.shape[:2]
    return GeneratedImage(
        index=decoded.index,
        prompt=decoded.prompt,
        seed=decoded.seed,
        png=encode_png(decoded.pixels),
        width=width,
        height=height,
        objects=tuple(objects),
        caption=decoded.caption,
        prompt_tokens_dropped=decoded.prompt_tokens_dropped,
    )
