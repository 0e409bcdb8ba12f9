"""Recording the UNet's cross-attention while it denoises (DAAM-style): how strongly each latent
pixel attends to each prompt token, summed over heads, layers and steps. These maps are where the
bounding boxes and masks come from; no detection model is involved.

Tracing wraps the existing processor of every `attn2` (cross-attention) layer, so the image itself
is computed exactly as without tracing. For the conditional half of the CFG batch it recomputes
the query and key projections and a softmax over the prompt tokens. The recording is plain tensor
code, which torch.compile traces into the UNet's graph. Only layers at half the latent
resolution or coarser are recorded: in SD-1.5 those are the semantically sharp 32x32/16x16/8x8
levels, and skipping the 64x64 level avoids its 4096-query score tensors. Each call adds into one
buffer per resolution in place; upsampling happens once per batch, not per step."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention


# Maps are kept for every prompt token after the start token (CLIP's 77 positions), whatever the
# prompt: the recording then has the same shapes for every request, so torch.compile traces it
# once instead of once per label count.
TOKENS = 76
# Buffer sets kept, one per (latent grid, batch, device) met; the oldest goes past this.
MAX_BUFFER_SETS = 8


class CrossAttentionRecorder:
    """Accumulates, for one batch, the attention of the conditional rows to prompt tokens
    1..TOKENS (token 0, the start token, soaks up most attention and carries no object).

    One recorder serves an engine for its lifetime (`reset` per batch): torch.compile traces
    `record` into the UNet's graph, and a recorder or processors made anew per request would make
    it trace again."""

    def __init__(self):
        self.latent_height = self.latent_width = 0
        self.max_queries = 0
        self.cond_rows = slice(0, 0)
        self._buckets: dict[tuple[int, int], torch.Tensor] = {}
        self._bucket_sets: dict[tuple, dict[tuple[int, int], torch.Tensor]] = {}
        self._wrappers: dict[int, TracingAttnProcessor] = {}
        # Latent grid -> the grids some layer recorded at: the UNet's structure decides, so it is
        # read from the buffers (a device sync) until found, and not for every batch after.
        self._written: dict[tuple[int, int], list[tuple[int, int]]] = {}

    def reset(self, latent_hw: tuple[int, int], cond_rows: slice, device: torch.device | str = "cpu") -> None:
        """Starts a batch on a latent grid of `latent_hw`: `cond_rows` are the rows of the UNet
        batch that carry the prompt (the second half under classifier-free guidance). One zeroed
        buffer per recorded resolution receives the maps in place.

        The buffers are made once per latent grid, batch and device, and zeroed for each batch
        after: torch.compile's CUDA graphs (the "reduce-overhead" and "max-autotune" modes) take
        in-place updates only of inputs at a fixed address, and skip a graph that updates fresh
        buffers. The zeroing is queued after the previous batch's reading of them."""
        self.latent_height, self.latent_width = latent_hw
        # Record a layer only at half the latent resolution or coarser (see module docstring).
        self.max_queries = max(1, (self.latent_height * self.latent_width) // 4)
        self.cond_rows = cond_rows
        batch = cond_rows.stop - cond_rows.start
        key = (latent_hw, batch, str(device))
        buckets = self._bucket_sets.get(key)
        if buckets is None:
            if len(self._bucket_sets) >= MAX_BUFFER_SETS:
                self._bucket_sets.pop(next(iter(self._bucket_sets)))
            buckets = self._bucket_sets[key] = {hw: torch.zeros(batch, TOKENS, *hw, device=device) for hw in self.grids()}
            for buffer in buckets.values():
                # Guarded: a graph traced with these buffers is not reused with others.
                torch._dynamo.mark_static_address(buffer, guard=True)
        else:
            for buffer in buckets.values():
                buffer.zero_()
        self._buckets = buckets

    def grids(self) -> list[tuple[int, int]]:
        """The (height, width) of every level below the latent grid: halved by each downsampling,
        rounding up, as SD's stride-2 convolutions with padding do."""
        grids, factor = [], 2
        while True:
            hw = (math.ceil(self.latent_height / factor), math.ceil(self.latent_width / factor))
            grids.append(hw)
            if hw == (1, 1):
                return grids
            factor *= 2

    def grid_for(self, queries: int) -> tuple[int, int]:
        """The (height, width) of a layer with `queries` positions."""
        if queries == self.latent_height * self.latent_width:
            return self.latent_height, self.latent_width
        for h, w in self.grids():
            if h * w == queries:
                return h, w
        raise ValueError(f"{queries} attention queries fit no downsampling of the latent grid")

    # Traceable: under torch.compile this becomes part of the UNet's graph (the in-place adds
    # are mutations of the buffers, which are graph inputs), with no graph break per layer.
    def record(self, attn: Attention, hidden_states: torch.Tensor, context: torch.Tensor) -> None:
        queries = hidden_states.shape[1]
        if queries > self.max_queries or hidden_states.ndim != 3:  # max_queries is 0 until reset
            return
        hidden_states = hidden_states[self.cond_rows]
        context = context[self.cond_rows]
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        batch = hidden_states.shape[0]
        query = attn.to_q(hidden_states)
        key = attn.to_k(context)
        head_dim = query.shape[-1] // attn.heads
        # Scores in float32: fp16 products can overflow, and at <= 1/4 of the latent positions
        # and 77 tokens this matmul is small next to the layer itself.
        query = query.view(batch, queries, attn.heads, head_dim).transpose(1, 2).float() * attn.scale
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2).float()
        probs = (query @ key.transpose(-1, -2)).softmax(dim=-1)
        tokens = min(TOKENS, probs.shape[-1] - 1)
        token_maps = probs[..., 1 : tokens + 1].sum(dim=1)  # (batch, queries, tokens)
        h, w = self.grid_for(queries)
        self._buckets[(h, w)][:, :tokens].add_(token_maps.transpose(1, 2).reshape(batch, tokens, h, w))

    def token_maps(self) -> torch.Tensor | None:
        """(batch, TOKENS, h, w) float32 attention at the finest recorded resolution, summed over
        every recorded layer and step; map k belongs to token k + 1. None if nothing was
        recorded."""
        latent = (self.latent_height, self.latent_width)
        grids = self._written.get(latent) or [hw for hw, maps in self._buckets.items() if bool(maps.any())]
        if not grids:
            return None
        self._written[latent] = grids
        written = {hw: self._buckets[hw] for hw in grids}
        size = max(written, key=lambda hw: hw[0] * hw[1])
        total = torch.zeros_like(written[size])  # its own memory: the buffers are zeroed for the next batch
        for hw, maps in written.items():
            total += maps if hw == size else F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
        return total


class TracingAttnProcessor:
    """Wraps a cross-attention layer's processor: hands the inputs to the recorder, then lets the
    original processor compute the output unchanged."""

    def __init__(self, inner, recorder: CrossAttentionRecorder):
        self.inner = inner
        self.recorder = recorder

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None:
            self.recorder.record(attn, hidden_states, encoder_hidden_states)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, **kwargs)


def cross_attention_layers(unet: UNet2DConditionModel) -> list[Attention]:
    return [m for name, m in unet.named_modules() if name.endswith("attn2") and isinstance(m, Attention)]


@contextmanager
def tracing_cross_attention(
    unet: UNet2DConditionModel, recorder: CrossAttentionRecorder
) -> Iterator[CrossAttentionRecorder]:
    """Routes every cross-attention layer through `recorder` for the duration of the block. The
    wrapping processors are the recorder's own, made once per layer (and again only if the layer's
    processor changed), so a compiled UNet sees the same objects on every traced call."""
    layers = cross_attention_layers(unet)
    if not layers:
        raise ValueError("the UNet has no cross-attention (attn2) layers to trace")
    originals = [layer.processor for layer in layers]
    for layer, original in zip(layers, originals):
        wrapper = recorder._wrappers.get(id(layer))
        if wrapper is None or wrapper.inner is not original:
            wrapper = recorder._wrappers[id(layer)] = TracingAttnProcessor(original, recorder)
        layer.set_processor(wrapper)
    try:
        yield recorder
    finally:
        for layer, original in zip(layers, originals):
            layer.set_processor(original)
