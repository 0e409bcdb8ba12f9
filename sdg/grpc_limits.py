"""gRPC message limits shared by the services and their clients. Kept apart from sdg.serving so
that clients (the gateway) need none of the server-side packages. Request limits: sdg.limits."""

# Streams carry PNGs and row batches; allow messages well above gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_SIZE_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
