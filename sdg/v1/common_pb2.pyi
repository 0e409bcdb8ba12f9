from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ModelInfo(_message.Message):
    __slots__ = ("model_id", "source", "demo_model", "loaded", "device", "dtype", "display_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DEMO_MODEL_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    source: str
    demo_model: bool
    loaded: bool
    device: str
    dtype: str
    display_name: str
    def __init__(self, model_id: _Optional[str] = ..., source: _Optional[str] = ..., demo_model: _Optional[bool] = ..., loaded: _Optional[bool] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Waiting(_message.Message):
    __slots__ = ("waited_s",)
    WAITED_S_FIELD_NUMBER: _ClassVar[int]
    waited_s: float
    def __init__(self, waited_s: _Optional[float] = ...) -> None: ...
