"""`python -m text_service`: serves TextService on SDG_TEXT_LISTEN (default 0.0.0.0:50051).
Logging is set up first: the model libraries log as they import."""

from sdg.logs import adopt_library_logs, configure_logging
from text_service.settings import TextSettings

settings = TextSettings()
configure_logging(settings.log_format, "%(asctime)s text_service %(levelname)s %(message)s")
adopt_library_logs("transformers")

from text_service.server import main  # noqa: E402

main(settings)
