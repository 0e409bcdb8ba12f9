"""The work done on a decoded image off the denoising thread: PNG encoding and turning its
attention maps into object annotations. Runs in the engine's thread pool (Pillow's encoder and
torch's interpolation release the GIL)."""

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
    # Attention maps of this image, (tokens, h, w) at latent-derived resolution; map k is token k+1.
    token_maps: torch.Tensor | None
    # label -> token positions in the encoded prompt, for the labels found in the prompt.
    label_positions: dict[str, list[int]]
    want_bbox: bool
    want_segmentation: bool
    caption: str


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def label_heatmaps(decoded: DecodedImage) -> dict[str, np.ndarray]:
    """Each label's attention map at image size: its tokens' maps summed, upsampled bilinearly."""
    if decoded.token_maps is None or not decoded.label_positions:
        return {}
    height, width = decoded.pixels.shape[:2]
    labels = list(decoded.label_positions)
    per_label = torch.stack(
        [decoded.token_maps[[p - 1 for p in decoded.label_positions[label]]].sum(dim=0) for label in labels]
    )
    upsampled = F.interpolate(per_label[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return dict(zip(labels, upsampled.numpy()))


def finish_image(decoded: DecodedImage) -> GeneratedImage:
    objects = []
    for label, heatmap in label_heatmaps(decoded).items():
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
    )
