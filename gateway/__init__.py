"""The REST gateway: accepts jobs over HTTP, runs them against the gRPC model services, and writes
their output under SDG_OUTPUT_DIR. `python -m gateway` starts it."""
