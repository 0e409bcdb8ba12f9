"""`python -m sdg.healthcheck HOST:PORT [SERVICE]`: a container health probe for the model services.

Calls grpc.health.v1 Health/Check and exits 0 only when the answer is SERVING. The services report
NOT_SERVING while their model loads, so Docker marks them healthy only once they can generate,
which is what the gateway's `depends_on: condition: service_healthy` waits for. Kept to grpc and
grpc_health so that it runs in any of the images (and never imports torch).
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    """Returns (serving, what the probe saw): the health status name, or the gRPC error code."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as err:
            return False, f"{err.code().name}: {err.details()}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sdg.healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("address", help="HOST:PORT of a gRPC server, e.g. localhost:50051")
    parser.add_argument("service", nargs="?", default="", help="service name; empty means the whole server")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    serving, seen = check(args.address, args.service, args.timeout)
    # One line either way, so `docker inspect` shows why a container is unhealthy.
    print(f"{args.address}: {seen}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1


if __name__ == "__main__":
    sys.exit(main())
