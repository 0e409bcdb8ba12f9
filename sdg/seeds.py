"""The seed a request gets when it names none: drawn the same way by the gateway and both
services, so a seed reads alike wherever it was drawn."""

import secrets

# Within 2**53 a seed is exact as a JSON number even for a client that reads it as a double
# (JavaScript, so the UI): a seed copied from a job or a summary can be sent back as it is.
SEED_BITS = 53


def draw_seed() -> int:
    return secrets.randbits(SEED_BITS)
