"""Grouped decode attention computes what transformers' eager attention (repeat_kv, then plain
softmax) computes, padding included."""

import copy

import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM

from text_service.attention import NAME, use_grouped_decode_attention


def test_grouped_decode_attention_matches_sdpa_on_padded_decode_steps():
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=97, hidden_size=96, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=6, num_key_value_heads=2, attn_implementation="sdpa",
    )
    grouped = Qwen2ForCausalLM(config).eval()
    reference = copy.deepcopy(grouped)
    reference.set_attn_implementation("eager")
    assert use_grouped_decode_attention(grouped) and grouped.config._attn_implementation == NAME

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
            steps = []
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
