"""`python -m image_service`: serves ImageService on SDG_IMAGE_LISTEN (default 0.0.0.0:50052).
Logging is set up first: the model libraries log as they import."""

from image_service.settings import ImageSettings
from sdg.logs import adopt_library_logs, configure_logging

settings = ImageSettings()
configure_logging(settings.log_format, "%(asctime)s %(levelname)s %(name)s: %(message)s")
adopt_library_logs("diffusers", "transformers")

from image_service.server import main  # noqa: E402

main(settings)
