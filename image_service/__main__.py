"""`python -m image_service`: serves ImageService on SDG_IMAGE_LISTEN (default 0.0.0.0:50052)."""

from image_service.server import main

main()
