"""gRPC message and request limits shared by the services and their clients. Kept apart from
sdg.serving so that clients (the gateway) need none of the server-side packages."""

# Streams carry PNGs and row batches; allow messages well above gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_SIZE_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]

# Request limits the services enforce and the gateway checks at submit, so that a job the gateway
# accepts is one the services take.
MAX_INSTRUCTIONS_CHARS = 4000
MAX_IMAGES = 100_000
MAX_INFERENCE_STEPS = 500
