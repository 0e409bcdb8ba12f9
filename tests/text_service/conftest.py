import pytest

from tests.conftest import TEST_MODEL_CACHE


@pytest.fixture(scope="session")
def text_engine():
    """The real engine on the tiny model, loaded once for the engine tests."""
    from text_service.server import load_engine
    from text_service.settings import TextSettings

    return load_engine(TextSettings(model="tiny", model_cache_dir=TEST_MODEL_CACHE, device="cpu"))
