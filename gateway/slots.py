"""SDG_MAX_CONCURRENT_JOBS counts jobs per model service. A job holds a slot of the service it is
using: a unified job holds a text slot for its rows, then gives it up for an image slot. With one
gateway-wide count, two jobs making or awaiting images kept a text job queued while the text
service sat idle.

A freed slot goes to the waiting job whose owner (API key) holds the fewest slots of that service,
then whose owner was served longest ago, then the one that has waited longest: one key's flood of
jobs does not starve another key's job. Without keys every job has the same owner: first come,
first served."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import get_args

from gateway.clients import ServiceKind


@dataclass
class _Waiter:
    owner: str | None
    order: int
    granted: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class _Pool:
    """The slots of one service."""

    def __init__(self, size: int):
        self.free = size
        self.waiting: list[_Waiter] = []
        self.held: dict[str | None, int] = {}
        self.last_served: dict[str | None, int] = {}

    def grant(self, owner: str | None, turn: int) -> None:
        self.held[owner] = self.held.get(owner, 0) + 1
        self.last_served[owner] = turn

    def give_back(self, owner: str | None, turn: int) -> None:
        self.held[owner] -= 1
        if not self.held[owner]:
            del self.held[owner]
        # A waiter whose job was cancelled has a cancelled future until its task runs again.
        self.waiting = [w for w in self.waiting if not w.granted.done()]
        if not self.waiting:
            self.free += 1
            return
        # The slot passes straight to the next waiter, so `free` stays 0 while any job waits.
        nxt = min(self.waiting, key=lambda w: (self.held.get(w.owner, 0), self.last_served.get(w.owner, -1), w.order))
        self.waiting.remove(nxt)
        self.grant(nxt.owner, turn)
        nxt.granted.set_result(None)


class ServiceSlots:
    def __init__(self, per_service: int):
        self._pools = {kind: _Pool(per_service) for kind in get_args(ServiceKind)}
        self._turns = itertools.count()

    def holder(self, owner: str | None = None) -> SlotHolder:
        return SlotHolder(self, owner)

    def must_wait(self, kind: ServiceKind) -> bool:
        return self._pools[kind].free == 0

    async def acquire(self, kind: ServiceKind, owner: str | None) -> None:
        pool = self._pools[kind]
        if pool.free and not pool.waiting:
            pool.free -= 1
            pool.grant(owner, next(self._turns))
            return
        waiter = _Waiter(owner, next(self._turns))
        pool.waiting.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self.release(kind, owner)  # granted just as it was cancelled: pass it on
            elif waiter in pool.waiting:
                pool.waiting.remove(waiter)
            raise

    def release(self, kind: ServiceKind, owner: str | None) -> None:
        self._pools[kind].give_back(owner, next(self._turns))


class SlotHolder:
    """The slot one job holds: none, then its first service's, then perhaps the next one's."""

    def __init__(self, slots: ServiceSlots, owner: str | None):
        self._slots = slots
        self.owner = owner
        self.kind: ServiceKind | None = None

    def must_wait(self, kind: ServiceKind) -> bool:
        return self.kind != kind and self._slots.must_wait(kind)

    async def take(self, kind: ServiceKind) -> None:
        """Holds a slot of `kind`, giving up the one held before first."""
        if self.kind == kind:
            return
        self.release()
        await self._slots.acquire(kind, self.owner)  # a cancel while waiting leaves nothing held
        self.kind = kind

    def release(self) -> None:
        if self.kind is not None:
            self._slots.release(self.kind, self.owner)
            self.kind = None
