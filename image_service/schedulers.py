"""The schedulers a request can name, made fresh per call from the model's noise schedule.

Euler ancestral draws fresh noise at every step from each image's CPU generator, as diffusers
does (so the same seed gives the same image). diffusers then moves it to the GPU with a plain
`.to()`, which waits for all the work queued on the device, once per step: the GPU idles while
the host runs the scheduler's arithmetic and launches the next UNet call. `EulerAncestral` is
diffusers' step with that one copy made through the engine's `upload`, which does not wait."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor


class EulerAncestral(EulerAncestralDiscreteScheduler):
    # Host tensor -> the same tensor on the device; set by the engine for each call.
    upload: Callable[[torch.Tensor], torch.Tensor] = staticmethod(lambda tensor: tensor)

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, generator=None, return_dict: bool = True):
        """EulerAncestralDiscreteScheduler.step (diffusers 0.42), copied: the same arithmetic in
        the same order (a test checks the pixels against the pipeline's), the noise drawn on the
        CPU generators and uploaded without waiting."""
        if return_dict:
            raise ValueError("SDG's Euler ancestral step returns a tuple; pass return_dict=False")
        if self.step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self.step_index]
        sample = sample.to(torch.float32)
        if self.config.prediction_type == "epsilon":
            pred_original_sample = sample - sigma * model_output
        elif self.config.prediction_type == "v_prediction":
            pred_original_sample = model_output * (-sigma / (sigma**2 + 1) ** 0.5) + (sample / (sigma**2 + 1))
        else:
            raise ValueError(f"prediction_type {self.config.prediction_type!r} is not supported by Euler ancestral")
        sigma_from = self.sigmas[self.step_index]
        sigma_to = self.sigmas[self.step_index + 1]
        sigma_up = (sigma_to**2 * (sigma_from**2 - sigma_to**2) / sigma_from**2) ** 0.5
        sigma_down = (sigma_to**2 - sigma_up**2) ** 0.5
        derivative = (sample - pred_original_sample) / sigma
        dt = sigma_down - sigma
        prev_sample = sample + derivative * dt
        noise = randn_tensor(model_output.shape, dtype=model_output.dtype, device=torch.device("cpu"), generator=generator)
        prev_sample = prev_sample + self.upload(noise) * sigma_up
        prev_sample = prev_sample.to(model_output.dtype)
        self._step_index += 1
        return prev_sample, pred_original_sample


def make_scheduler(default, name: str, upload: Callable[[torch.Tensor], torch.Tensor]):
    """A fresh scheduler per call (schedulers keep per-run state), sharing the model's noise
    schedule configuration."""
    if name == "dpm++":
        return DPMSolverMultistepScheduler.from_config(default.config, algorithm_type="dpmsolver++")
    if name == "euler_a":
        scheduler = EulerAncestral.from_config(default.config)
        scheduler.upload = upload
        return scheduler
    return type(default).from_config(default.config)


def scheduler_step_kwargs(scheduler) -> dict:
    """eta=0 (deterministic DDIM) and the generators, for schedulers whose step() takes them."""
    accepted = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in accepted:
        kwargs["eta"] = 0.0
    if "generator" in accepted:
        kwargs["generator"] = None  # replaced per batch with the batch's generators
    return kwargs
