"""Grouped attention computes what transformers' eager attention (repeat_kv, then plain softmax)
computes, padding included, for prefill and decode steps; a kv_limit that covers every filled
position changes nothing."""

import copy

import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM, StaticCache

from text_service.attention import NAME, kv_limit, use_grouped_attention

# 6 query heads over 2 key/value heads, as Qwen2.5's 12 over 2.
CONFIG = dict(
    vocab_size=97, hidden_size=96, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=6, num_key_value_heads=2, attn_implementation="sdpa",
)


def test_grouped_attention_matches_eager_on_padded_prefill_and_decode_steps():
    torch.manual_seed(0)
    config = Qwen2Config(**CONFIG)
    grouped = Qwen2ForCausalLM(config).eval()
    reference = copy.deepcopy(grouped)
    reference.set_attn_implementation("eager")
    assert use_grouped_attention(grouped) and grouped.config._attn_implementation == NAME

    ids = torch.randint(1, 97, (3, 7))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding, as the engine's batches have
    mask[2, :1] = 0
    logits = {}
    for name, model in (("eager", reference), ("grouped", grouped)):
        cache = DynamicCache(config=config)
        attention = mask.clone()
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            out = model(input_ids=ids, attention_mask=attention, position_ids=positions, past_key_values=cache, use_cache=True)
            steps = [out.logits[:, -1]]
            for step in range(3):
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                attention = torch.cat([attention, torch.tensor([[1], [0 if step == 1 else 1], [1]])], 1)
                positions = attention.sum(-1, keepdim=True) - 1
                out = model(
                    input_ids=token, attention_mask=attention, position_ids=positions, past_key_values=cache, use_cache=True
                )
                steps.append(out.logits[:, -1])
        logits[name] = torch.stack(steps)
    torch.testing.assert_close(logits["grouped"], logits["eager"], rtol=1e-4, atol=1e-4)


def test_kv_limit_over_a_static_cache_changes_nothing_while_it_covers_the_filled_positions():
    torch.manual_seed(1)
    config = Qwen2Config(**CONFIG)
    model = Qwen2ForCausalLM(config).eval()
    assert use_grouped_attention(model)
    ids = torch.randint(1, 97, (2, 5))
    logits = {}
    for limit in (None, 8, 6):
        cache = StaticCache(config=config, max_cache_len=32)
        attention = torch.zeros((2, 32), dtype=torch.long)
        attention[:, :5] = 1
        attention[1, 0] = 0  # left padding
        positions = (attention[:, :5].cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode(), kv_limit(limit):
            out = model(input_ids=ids, attention_mask=attention[:, :5], position_ids=positions,
                        past_key_values=cache, cache_position=torch.arange(5), use_cache=True)
            steps = [out.logits[:, -1]]
            for slot in range(5, 8):
                attention[:, slot] = 1
                token = out.logits[:, -1].argmax(-1, keepdim=True)
                out = model(input_ids=token, attention_mask=attention, position_ids=attention[:, : slot + 1].sum(-1, keepdim=True) - 1,
                            past_key_values=cache, cache_position=torch.tensor([slot]), use_cache=True)
                steps.append(out.logits[:, -1])
        logits[limit] = torch.stack(steps)
    torch.testing.assert_close(logits[8], logits[None], rtol=1e-4, atol=1e-4)
    # A limit below the filled positions does cut attention: the last steps see less.
    torch.testing.assert_close(logits[6][:2], logits[None][:2], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(logits[6][-1], logits[None][-1], atol=1e-3)
