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
