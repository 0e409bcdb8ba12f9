"""Attention for grouped-query models, registered with transformers as `sdg_sdpa`.

Qwen2.5-1.5B has 12 query heads over 2 key/value heads. With a padding mask (every batched decode
has one), transformers' SDPA path copies each key/value head once per query head (`repeat_kv`)
before attending, so a decode step over a 1,024-row KV cache writes and reads the cache six times
over. Recent transformers versions avoid that in eager mode only, and never under torch.compile,
which is how the static decoder runs on CUDA.

Here the query is regrouped instead: the six query heads that share a key/value head become six
times as many query rows of that head (the mask repeated to match), so SDPA reads each cached key
and value once. On an H200 the copies had cost 100 ms of a 1,024-row prefill. Without a mask
(causal prefill) the rows would lose their causal alignment, so that case goes to transformers'
SDPA function unchanged.

`kv_limit` also lets a caller that knows where the filled part of a static KV cache ends (the
static decoder) attend over that prefix only: a wave's cache is sized for its longest possible
row, and rows usually finish far sooner.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "sdg_sdpa"


# Positions beyond this are never attended to (None: the whole cache). torch.compile reads it
# while tracing and guards on its value, so each limit gets its own compiled graph.
_kv_limit: int | None = None


@contextmanager
def kv_limit(limit: int | None) -> Iterator[None]:
    """Within the block, attention reads the first `limit` cache positions only; the caller
    guarantees that every position a query may see lies below it. The limit is process-wide (a
    module global, so that dynamo can guard on it): only the static decoder sets it, around its
    own forward passes, under the engine's decode lock."""
    global _kv_limit
    previous, _kv_limit = _kv_limit, limit
    try:
        yield
    finally:
        _kv_limit = previous


def grouped_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """query (batch, heads, q, dim), key/value (batch, kv_heads, length, dim); returns
    (batch, q, heads, dim), as every transformers attention function does."""
    if _kv_limit is not None and key.shape[-2] > _kv_limit:
        key, value = key[:, :, :_kv_limit], value[:, :, :_kv_limit]
        if attention_mask is not None:
            attention_mask = attention_mask[..., :_kv_limit]
    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, q_length, dim = query.shape
    shared_mask = attention_mask is not None and attention_mask.shape[1] == 1
    if groups == 1 or not (shared_mask or (attention_mask is None and q_length == 1)) or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    # Head h reads key/value head h // groups (transformers' repeat_kv order); its query rows
    # become rows (h % groups) * q_length + i of that key/value head.
    grouped = query.reshape(batch, heads // groups, groups * q_length, dim)
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
        if q_length > 1:
            attention_mask = attention_mask.repeat(1, 1, groups, 1)
    out = torch.nn.functional.scaled_dot_product_attention(
        grouped, key, value, attn_mask=attention_mask, dropout_p=0.0, scale=scaling
    )
    return out.reshape(batch, heads, q_length, dim).transpose(1, 2).contiguous(), None


def use_grouped_attention(model) -> bool:
    """Switches `model` to grouped attention where transformers allows it; returns whether
    it did. Masks are built exactly as for SDPA."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", NAME):
        return False
    AttentionInterface.register(NAME, grouped_attention)
    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(NAME, sdpa_mask)
    try:
        model.set_attn_implementation(NAME)
    except (AttributeError, ValueError):
        model.config._attn_implementation = NAME
    return model.config._attn_implementation == NAME
