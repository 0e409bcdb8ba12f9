"""The shard queue (gateway/shards.py) on both databases, with replicas that stand in for lost
ones: a lost shard goes to another replica for the positions it lacks, its attempts are counted
and kept in the job database, and a gateway taken over ends its shards' runs. Rows of shards are
written in shard order, and those still waiting when a gateway dies are salvaged."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from gateway.errors import JobFailure, ReplicaLost
from gateway.jobs import JobStore, Leases
from gateway.metrics import GatewayMetrics
from gateway.outputs import RowWriter, salvage_rows
from gateway.outputs.tables import read_rows
from gateway.shards import InOrder, Shard, ShardBook, job_shards, run_shards

SCHEMA = {"type": "object", "properties": {"id": {"type": "integer"}}}


@dataclass(frozen=True)
class Replica:
    address: str

    @property
    def label(self) -> str:
        return f"text service at {self.address}"


def lost(replica: Replica) -> ReplicaLost:
    return ReplicaLost(f"text service unavailable at {replica.address}: Socket closed", kind="text", address=replica.address)


@pytest.fixture
def store(database_url, tmp_path):
    opened = JobStore.open(database_url, tmp_path, leases=Leases("gw-1", ttl_s=0.5))
    opened.load()
    yield opened
    opened.close()


def numbered(start: int, size: int) -> tuple[dict, ...]:
    return tuple({"id": i} for i in range(start, start + size))


async def test_a_shard_whose_replica_is_lost_goes_to_another_for_the_positions_it_lacks(store):
    job = store.create("text", {}, "queued")
    a, b = Replica("a:1"), Replica("b:1")
    shards = [Shard(i, 4, numbered(4 * i, 4)) for i in range(3)]
    asked: list[tuple[str, int, list[int]]] = []

    async def run(replica: Replica, shard: Shard) -> bool:
        ids = [shard.given[p]["id"] for p in shard.open_positions(SCHEMA)]
        asked.append((replica.address, shard.index, ids))
        if replica is a and shard.index == 0:
            shard.took([{"id": 2}])  # one row of the shard is written, then the replica dies
            raise lost(a)
        shard.took([{"id": i} for i in ids])
        return True

    await run_shards(shards, [a, b], run, ShardBook(store.engine, job.job_id, 0, store.leases, GatewayMetrics()), max_attempts=3)
    assert ("a:1", 0, [0, 1, 2, 3]) in asked and ("b:1", 0, [0, 1, 3]) in asked
    assert [(s.done, s.attempts) for s in shards] == [(4, 2), (4, 1), (4, 1)]
    assert {address for address, index, _ in asked if index > 0} == {"b:1"}  # a took no more
    book = job_shards(store.engine, job.job_id)
    assert [(s["shard"], s["state"], s["done"], s["attempts"], s["replica"]) for s in book] == [
        (0, "completed", 4, 2, "b:1"), (1, "completed", 4, 1, "b:1"), (2, "completed", 4, 1, "b:1")]
    assert "unavailable at a:1" in book[0]["error"] and book[1]["error"] is None
    assert all(s["gateway"] is None and s["lease_expires_at"] is None for s in book)  # done: nobody's


async def test_shards_with_no_replica_left_raise_the_loss_for_the_job_to_fail_over(store):
    job = store.create("text", {}, "queued")
    a, b = Replica("a:1"), Replica("b:1")

    async def run(replica: Replica, shard: Shard) -> bool:
        raise lost(replica)

    with pytest.raises(ReplicaLost):
        await run_shards([Shard(0, 4), Shard(1, 4)], [a, b], run, ShardBook(store.engine, job.job_id, 0, store.leases, GatewayMetrics()), max_attempts=3)
    assert {s["state"] for s in job_shards(store.engine, job.job_id)} == {"interrupted"}


async def test_a_shard_lost_on_each_of_its_attempts_fails_the_job_naming_it(store):
    job = store.create("text", {}, "queued")
    replicas = [Replica(f"r{i}:1") for i in range(3)]

    async def run(replica: Replica, shard: Shard) -> bool:
        if shard.index == 1:
            raise lost(replica)
        shard.took([{}] * shard.size)
        return True

    with pytest.raises(JobFailure, match=r"shard 1 lost its replica on each of its 2 attempts: text service unavailable at r\d:1"):
        await run_shards([Shard(0, 2), Shard(1, 2)], replicas, run, ShardBook(store.engine, job.job_id, 0, store.leases, GatewayMetrics()), max_attempts=2)
    states = {s["shard"]: s["state"] for s in job_shards(store.engine, job.job_id)}
    assert states[1] == "failed"


def test_a_running_shard_is_leased_by_its_gateway_and_ends_its_run_when_another_takes_the_job_over(store, database_url, tmp_path):
    job = store.create("text", {}, "queued")
    shard = Shard(0, 8, replica="a:1", attempts=1)
    book = ShardBook(store.engine, job.job_id, 0, store.leases, GatewayMetrics())
    book.plan([shard])
    book.update(shard, "running")
    [running] = job_shards(store.engine, job.job_id)
    assert running["gateway"] == "gw-1" and running["lease_expires_at"] > time.time()
    store.renew()
    assert job_shards(store.engine, job.job_id)[0]["lease_expires_at"] >= running["lease_expires_at"]
    time.sleep(0.6)  # gw-1 stops renewing: it died
    other = JobStore.open(database_url, tmp_path, leases=Leases("gw-2", ttl_s=30))
    try:
        other.claim()
        [taken] = job_shards(store.engine, job.job_id)
        assert (taken["state"], taken["gateway"]) == ("interrupted", None)
    finally:
        other.close()


def test_rows_of_shards_reach_the_output_in_shard_order_whichever_finishes_first(tmp_path):
    shards = [Shard(i, 2) for i in range(3)]
    written: list[int] = []
    order = InOrder(tmp_path, "data", shards, lambda rows: written.extend(row["id"] for row in rows))
    order.add(shards[2], [{"id": 4}])
    order.add(shards[0], [{"id": 0}])  # the front streams
    order.add(shards[1], [{"id": 2}, {"id": 3}])
    assert written == [0] and order.waiting == 3 and len(list(tmp_path.glob(".data.shard*.jsonl"))) == 2
    order.finished(shards[1])
    order.add(shards[0], [{"id": 1}])
    order.finished(shards[0])  # 1 is done too: 2 is the front now, its held rows go first
    assert written == [0, 1, 2, 3, 4] and order.waiting == 0
    order.add(shards[2], [{"id": 5}])
    assert written == [0, 1, 2, 3, 4, 5] and not list(tmp_path.glob(".data.shard*"))


def test_rows_a_dead_gateway_left_waiting_for_earlier_shards_are_salvaged_after_the_others(tmp_path):
    writer = RowWriter(tmp_path, "json", SCHEMA)
    shards = [Shard(0, 2), Shard(1, 2), Shard(2, 2)]
    order = InOrder(tmp_path, "data", shards, writer.write)
    order.add(shards[0], [{"id": 0}])
    order.add(shards[2], [{"id": 4}, {"id": 5}])
    order.add(shards[1], [{"id": 2}])
    # The process dies here: no close.
    assert salvage_rows(tmp_path, "json", SCHEMA) == 4
    assert [row["id"] for row in read_rows(tmp_path, "json", SCHEMA)] == [0, 2, 4, 5]
    assert not list(tmp_path.glob(".data.shard*"))
