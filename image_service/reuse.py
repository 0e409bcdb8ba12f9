"""Feature reuse (after DeepCache, Ma et al. 2023): between two denoising steps, a UNet's deep
features change little, while its shallowest layers are cheap. With `feature_reuse` N, every Nth
step runs the whole UNet and keeps the hidden state entering the second layer of its last up
block; the N-1 steps after it run only the input convolution, the first down block's first
layers and the last up block's remaining layers, on that kept state.

For SD-1.5 at 512x512 the shallow step is about a quarter of a full step's FLOPs, so N=3 does
about half the UNet's work. The images are not the exact ones: the steps between full ones see
deep features one or two steps old. The full steps run exactly the UNet's own arithmetic (a test
checks `full` against `UNet2DConditionModel.forward`), and the same request gives the same images.

`FeatureReuse.full` and `.shallow` call the UNet's own blocks, so attention processors swapped in
for annotation tracing apply to them as to the UNet."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel

# The last up block's layer whose input is kept: 1 keeps the output of its first layer, which
# leaves the shallow step the layers that read the finest skip connections.
SPLIT = 1


def unsupported_reason(unet: UNet2DConditionModel) -> str | None:
    """Why FeatureReuse cannot reproduce this UNet's forward pass, or None when it can: it covers
    the SD-1.x/2.x family (no class or added embeddings, no FreeU, one more layer per up block
    than per down block)."""
    config = unet.config
    extras = {
        "center_input_sample": config.center_input_sample,
        "class_embed_type": config.class_embed_type,
        "addition_embed_type": config.addition_embed_type,
        "time_cond_proj_dim": config.time_cond_proj_dim,
        "encoder_hid_dim_type": config.encoder_hid_dim_type,
        "time_embedding_act_fn": config.time_embedding_act_fn,
    }
    used = [name for name, value in extras.items() if value]
    if used:
        return f"its UNet uses {', '.join(used)}"
    if unet.mid_block is None:
        return "its UNet has no middle block"
    first, last = unet.down_blocks[0], unet.up_blocks[-1]
    if len(last.resnets) != len(first.resnets) + 1 or len(last.resnets) <= SPLIT:
        return "its UNet's first and last blocks do not mirror each other"
    if last.upsamplers is not None:
        return "its UNet's last up block upsamples"
    if any(getattr(block, "s1", None) for block in unet.up_blocks):
        return "FreeU is enabled"
    return None


class FeatureReuse:
    def __init__(self, unet: UNet2DConditionModel):
        reason = unsupported_reason(unet)
        if reason:
            raise ValueError(f"feature reuse does not support this model: {reason}")
        self.unet = unet

    def full(self, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The UNet's noise prediction, as `unet(sample, timestep, context)` computes it, and the
        deep features that `shallow` reuses."""
        unet = self.unet
        emb = self._embed(sample, timestep)
        hidden = unet.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (hidden,)
        for block in unet.down_blocks:
            if getattr(block, "has_cross_attention", False):
                hidden, more = block(
                    hidden_states=hidden,
                    temb=emb,
                    encoder_hidden_states=context,
                    attention_mask=None,
                    cross_attention_kwargs=None,
                    encoder_attention_mask=None,
                )
            else:
                hidden, more = block(hidden_states=hidden, temb=emb)
            skips += more
        if getattr(unet.mid_block, "has_cross_attention", False):
            hidden = unet.mid_block(
                hidden, emb, encoder_hidden_states=context, attention_mask=None, cross_attention_kwargs=None, encoder_attention_mask=None
            )
        else:
            hidden = unet.mid_block(hidden, emb)
        # As the UNet does: an explicit upsampling size only where a side does not halve evenly.
        factor = 2**unet.num_upsamplers
        forward_size = any(side % factor for side in sample.shape[-2:])
        upsample_size = None
        for block in unet.up_blocks[:-1]:
            taken = skips[-len(block.resnets) :]
            skips = skips[: -len(block.resnets)]
            if forward_size:
                upsample_size = skips[-1].shape[2:]
            if getattr(block, "has_cross_attention", False):
                hidden = block(
                    hidden_states=hidden,
                    temb=emb,
                    res_hidden_states_tuple=taken,
                    encoder_hidden_states=context,
                    cross_attention_kwargs=None,
                    upsample_size=upsample_size,
                    attention_mask=None,
                    encoder_attention_mask=None,
                )
            else:
                hidden = block(hidden_states=hidden, temb=emb, res_hidden_states_tuple=taken, upsample_size=upsample_size)
        last = unet.up_blocks[-1]
        deep = self._last_block_layers(hidden, skips, emb, context, 0, SPLIT)
        hidden = self._last_block_layers(deep, skips[:-SPLIT], emb, context, SPLIT, len(last.resnets))
        return self._out(hidden), deep

    def shallow(self, sample: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor, deep: torch.Tensor) -> torch.Tensor:
        """The noise prediction from the shallow layers, on the deep features of the last full step."""
        unet = self.unet
        emb = self._embed(sample, timestep)
        hidden = unet.conv_in(sample)
        skips: tuple[torch.Tensor, ...] = (hidden,)
        first, last = unet.down_blocks[0], unet.up_blocks[-1]
        attentions = getattr(first, "attentions", None)
        # The last block's layers SPLIT.. read the input convolution and these first-block layers.
        for i in range(len(last.resnets) - 1 - SPLIT):
            hidden = first.resnets[i](hidden, emb)
            if attentions is not None:
                hidden = attentions[i](
                    hidden, encoder_hidden_states=context, cross_attention_kwargs=None, attention_mask=None, encoder_attention_mask=None, return_dict=False
                )[0]
            skips += (hidden,)
        hidden = self._last_block_layers(deep, skips, emb, context, SPLIT, len(last.resnets))
        return self._out(hidden)

    def _embed(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        unet = self.unet
        return unet.time_embedding(unet.get_time_embed(sample=sample, timestep=timestep), None)

    def _last_block_layers(
        self, hidden: torch.Tensor, skips: tuple[torch.Tensor, ...], emb: torch.Tensor, context: torch.Tensor, start: int, stop: int
    ) -> torch.Tensor:
        """Layers start..stop-1 of the last up block, as its forward runs them: each concatenates
        the last of `skips`, then runs its resnet and, in a cross-attention block, its transformer."""
        last = self.unet.up_blocks[-1]
        attentions = getattr(last, "attentions", None)
        for i in range(start, stop):
            hidden = torch.cat([hidden, skips[-1]], dim=1)
            skips = skips[:-1]
            hidden = last.resnets[i](hidden, emb)
            if attentions is not None:
                hidden = attentions[i](
                    hidden, encoder_hidden_states=context, cross_attention_kwargs=None, attention_mask=None, encoder_attention_mask=None, return_dict=False
                )[0]
        return hidden

    def _out(self, hidden: torch.Tensor) -> torch.Tensor:
        unet = self.unet
        if unet.conv_norm_out is not None:
            hidden = unet.conv_act(unet.conv_norm_out(hidden))
        return unet.conv_out(hidden)
