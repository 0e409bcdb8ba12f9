"""ModelInfo: what a model service has loaded, as both services report it (sdg.v1.ModelInfo)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sdg.v1 import common_pb2


@dataclass(frozen=True)
class ModelInfo:
    """What is loaded, so callers can label output honestly; the fields are sdg.v1.ModelInfo's."""

    model_id: str
    source: str
    demo_model: bool
    loaded: bool
    device: str
    dtype: str
    display_name: str

    @classmethod
    def unloaded(cls, model_id: str, demo_model: bool, display_name: str) -> ModelInfo:
        """What GetModelInfo reports while the weights are still loading."""
        return cls(model_id, "", demo_model, False, "", "", display_name)

    def to_pb(self) -> common_pb2.ModelInfo:
        return common_pb2.ModelInfo(**asdict(self))
