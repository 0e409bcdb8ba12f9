"""`python -m gateway`: reads GatewaySettings from the environment and serves the API with uvicorn
on UVICORN_HOST:UVICORN_PORT; `python -m gateway keys ...` manages API keys instead
(gateway/keys_cli.py). uvicorn turns SIGTERM into a lifespan shutdown, which records
unfinished jobs as interrupted."""

from __future__ import annotations

import logging
import os
import sys

import uvicorn

from gateway import keys_cli
from gateway.app import create_app
from gateway.settings import GatewaySettings
from sdg.env import warn_about_unread_variables
from sdg.logs import configure_logging


def main() -> None:
    settings = GatewaySettings()
    if sys.argv[1:2] == ["keys"]:
        sys.exit(keys_cli.main(sys.argv[2:], settings))
    configure_logging(settings.log_format, "%(asctime)s %(levelname)s %(name)s: %(message)s")
    warn_about_unread_variables(logging.getLogger("gateway"), os.environ)
    # log_config=None: uvicorn's own lines go through the handler above, in its format.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", log_config=None)


if __name__ == "__main__":
    main()
