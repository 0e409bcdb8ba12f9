"""Decode-step attention for grouped-query models, registered with transformers as `sdg_sdpa`.

Qwen2.5-1.5B has 12 query heads over 2 key/value heads. With a padding mask (every batched decode
has one), transformers' SDPA path copies each key/value head once per query head (`repeat_kv`)
before attending, so a decode step over a 1,024-row KV cache writes and reads the cache six times
over. Recent transformers versions avoid that in eager mode only, and never under torch.compile,
which is how the static decoder runs on CUDA.

Here a one-token query is regrouped instead: the six query heads that share a key/value head
become six query rows of that head, so SDPA reads each cached key and value once. Prefill
(several query tokens) goes to transformers' own SDPA function unchanged.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

NAME = "sdg_sdpa"


def grouped_decode_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """query (batch, heads, q, dim), key/value (batch, kv_heads, length, dim); returns
    (batch, q, heads, dim), as every transformers attention function does."""
    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, q_length, dim = query.shape
    shared_mask = attention_mask is None or attention_mask.shape[1] == 1
    if q_length != 1 or groups == 1 or not shared_mask or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    # Head h reads key/value head h // groups (transformers' repeat_kv order).
    grouped = query.reshape(batch, heads // groups, groups, dim)
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
    out = torch.nn.functional.scaled_dot_product_attention(
        grouped, key, value, attn_mask=attention_mask, dropout_p=0.0, scale=scaling
    )
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def use_grouped_decode_attention(model) -> bool:
    """Switches `model` to grouped decode attention where transformers allows it; returns whether
    it did. Masks are built exactly as for SDPA."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, sdpa_mask

    if getattr(model.config, "_attn_implementation", None) not in ("sdpa", NAME):
        return False
    AttentionInterface.register(NAME, grouped_decode_attention)
    if NAME not in ALL_MASK_ATTENTION_FUNCTIONS._global_mapping:
        AttentionMaskInterface.register(NAME, sdpa_mask)
    try:
        model.set_attn_implementation(NAME)
    except (AttributeError, ValueError):
        model.config._attn_implementation = NAME
    return model.config._attn_implementation == NAME
