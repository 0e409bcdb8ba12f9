"""gateway.slots: a job holds at most one service slot, gives up the old one for the next, and a
cancel while it waits leaves nothing held."""

import asyncio

from gateway.slots import ServiceSlots


async def test_a_job_moves_from_a_text_slot_to_an_image_slot_and_holds_one_at_most():
    slots = ServiceSlots(1)
    unified, text_job = slots.holder(), slots.holder()
    await unified.take("text")
    assert text_job.must_wait("text") and not text_job.must_wait("image")
    await unified.take("text")  # the one it holds: no wait, nothing more taken
    await unified.take("image")
    assert not text_job.must_wait("text")  # the text slot was given up...
    await asyncio.wait_for(text_job.take("text"), 1)
    assert slots.holder().must_wait("image")  # ...and the image slot is held
    unified.release()
    unified.release()  # releasing twice frees one slot, once
    assert not slots.holder().must_wait("image")
    text_job.release()


async def test_a_cancel_while_waiting_holds_nothing():
    slots = ServiceSlots(1)
    running, waiting = slots.holder(), slots.holder()
    await running.take("image")
    pending = asyncio.create_task(waiting.take("image"))
    await asyncio.sleep(0.01)
    pending.cancel()
    await asyncio.gather(pending, return_exceptions=True)
    assert waiting.kind is None
    running.release()
    # The slot is free again for the next job, so the cancelled wait took none.
    await asyncio.wait_for(slots.holder().take("image"), 1)


async def _waiting(slots: ServiceSlots, owner: str, served: list[str]) -> asyncio.Task:
    holder = slots.holder(owner)

    async def wait_then_record() -> None:
        await holder.take("text")
        served.append(owner)
        holder.release()

    task = asyncio.create_task(wait_then_record())
    await asyncio.sleep(0)  # queued in the order created
    return task


async def test_a_freed_slot_goes_to_the_key_that_holds_fewest_not_to_the_one_that_flooded():
    slots = ServiceSlots(2)
    flood_running, small_running = slots.holder("flood"), slots.holder("small")
    await flood_running.take("text")
    await small_running.take("text")
    served: list[str] = []
    waiting = [await _waiting(slots, "flood", served) for _ in range(3)] + [await _waiting(slots, "small", served)]
    small_running.release()  # both now hold one: the small key's job, though last, is not behind the flood
    await asyncio.sleep(0.01)
    assert served[:1] == ["small"]
    flood_running.release()
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert served == ["small", "flood", "flood", "flood"]


async def test_with_one_slot_keys_take_turns_and_each_keys_jobs_run_in_order():
    slots = ServiceSlots(1)
    running = slots.holder("a")
    await running.take("text")
    served: list[str] = []
    waiting = [await _waiting(slots, owner, served) for owner in ("a", "a", "a", "b", "b")]
    running.release()
    await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert served == ["b", "a", "b", "a", "a"]


async def test_without_keys_jobs_are_served_first_come_first_served():
    slots = ServiceSlots(1)
    first = slots.holder()
    await first.take("image")
    order: list[int] = []

    async def job(i: int) -> None:
        holder = slots.holder()
        await holder.take("image")
        order.append(i)
        holder.release()

    tasks = []
    for i in range(4):
        tasks.append(asyncio.create_task(job(i)))
        await asyncio.sleep(0)
    first.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert order == [0, 1, 2, 3]


async def test_a_slot_granted_to_a_job_cancelled_before_it_ran_passes_to_the_next():
    slots = ServiceSlots(1)
    running, doomed, next_job = slots.holder("a"), slots.holder("b"), slots.holder("c")
    await running.take("text")
    doomed_wait = asyncio.create_task(doomed.take("text"))
    await asyncio.sleep(0)
    next_wait = asyncio.create_task(next_job.take("text"))
    await asyncio.sleep(0)
    running.release()  # granted to "b"...
    doomed_wait.cancel()  # ...which is cancelled before it resumes
    await asyncio.gather(doomed_wait, return_exceptions=True)
    await asyncio.wait_for(next_wait, 1)
    assert doomed.kind is None and next_job.kind == "text"
    next_job.release()
    assert not slots.must_wait("text")


async def test_a_slot_freed_between_a_waiters_cancel_and_its_wake_up_skips_it():
    slots = ServiceSlots(1)
    running, cancelled, next_job = slots.holder(), slots.holder(), slots.holder()
    await running.take("text")
    waits = [asyncio.create_task(cancelled.take("text")), asyncio.create_task(next_job.take("text"))]
    await asyncio.sleep(0.01)
    waits[0].cancel()
    running.release()  # before the cancelled task has run again
    await asyncio.gather(waits[0], return_exceptions=True)
    await asyncio.wait_for(waits[1], 1)
    assert (cancelled.kind, next_job.kind) == (None, "text")
