"""SDG_MAX_CONCURRENT_JOBS counts jobs per model service. A job holds a slot of the service it is
using: a unified job holds a text slot for its rows, then gives it up for an image slot. With one
gateway-wide count, two jobs making or awaiting images kept a text job queued while the text
service sat idle."""

from __future__ import annotations

import asyncio
from typing import get_args

from gateway.clients import ServiceKind


class ServiceSlots:
    def __init__(self, per_service: int):
        self._free = {kind: asyncio.Semaphore(per_service) for kind in get_args(ServiceKind)}

    def holder(self) -> SlotHolder:
        return SlotHolder(self._free)


class SlotHolder:
    """The slot one job holds: none, then its first service's, then perhaps the next one's."""

    def __init__(self, free: dict[ServiceKind, asyncio.Semaphore]):
        self._free = free
        self.kind: ServiceKind | None = None

    def must_wait(self, kind: ServiceKind) -> bool:
        return self.kind != kind and self._free[kind].locked()

    async def take(self, kind: ServiceKind) -> None:
        """Holds a slot of `kind`, giving up the one held before first."""
        if self.kind == kind:
            return
        self.release()
        await self._free[kind].acquire()  # a cancel while waiting leaves nothing held
        self.kind = kind

    def release(self) -> None:
        if self.kind is not None:
            self._free[self.kind].release()
            self.kind = None
