"""Durability: every acknowledged record survives kill -9; restarts keep streams and metadata.

Each test here runs its own server process (it kills and restarts it), so they are
runnel-only.
"""

from __future__ import annotations

import threading
import uuid

import pytest
from botocore.exceptions import BotoCoreError, ClientError

import kin

pytestmark = pytest.mark.runnel_only

WRITERS = 3
BATCH = 25
KILL_AFTER_ACKED = 1500  # records acknowledged before the kill
MAX_BATCHES_PER_WRITER = 400  # bounds the load even if the kill never comes


def _payload(writer: int, batch: int, i: int) -> bytes:
    # Self-describing, so a corrupt or foreign record is recognisable on read-back.
    return f"w{writer}-b{batch}-i{i}-{uuid.uuid4().hex}".encode()


def _read_everything(client, name: str) -> dict[str, list[dict]]:
    return {s["ShardId"]: kin.read_shard(client, name, s["ShardId"]) for s in kin.list_all_shards(client, name)}


def test_kill_9_loses_no_acknowledged_record():
    srv = kin.RunnelProcess().start()  # default durability
    try:
        client = kin.make_client(srv.endpoint)
        client.create_stream(StreamName="crash", ShardCount=4)
        kin.wait_status(client, "crash")

        lock = threading.Lock()
        acked: dict[bytes, tuple[str, str]] = {}  # data -> (shard, seq)
        attempted: set[bytes] = set()
        enough = threading.Event()
        stop = threading.Event()

        def writer(w: int) -> None:
            c = kin.make_client(srv.endpoint, retry_throttling=False)
            for b in range(MAX_BATCHES_PER_WRITER):
                if stop.is_set():
                    return
                entries = [{"Data": _payload(w, b, i), "PartitionKey": f"{w}-{b}-{i}"} for i in range(BATCH)]
                with lock:
                    attempted.update(e["Data"] for e in entries)
                try:
                    r = c.put_records(StreamName="crash", Records=entries)
                except (BotoCoreError, ClientError, OSError):
                    return  # the server is gone: this batch is in flight, not acknowledged
                with lock:
                    for e, res in zip(entries, r["Records"]):
                        if "SequenceNumber" in res and "ErrorCode" not in res:
                            acked[e["Data"]] = (res["ShardId"], res["SequenceNumber"])
                    if len(acked) >= KILL_AFTER_ACKED:
                        enough.set()
            enough.set()

        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
        for t in threads:
            t.start()
        assert enough.wait(timeout=90), "load never reached the kill point"
        srv.kill()  # SIGKILL while writers are mid-request
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        with lock:
            acked_snapshot = dict(acked)
            attempted_snapshot = set(attempted)
        assert len(acked_snapshot) >= KILL_AFTER_ACKED

        srv.start()  # same data dir, new port
        client = kin.make_client(srv.endpoint)
        assert kin.wait_status(client, "crash")["OpenShardCount"] == 4
        by_shard = _read_everything(client, "crash")

        seen: dict[bytes, tuple[str, str]] = {}
        for shard_id, records in by_shard.items():
            kin.assert_increasing([r["SequenceNumber"] for r in records])
            for r in records:
                data = r["Data"]
                assert data in attempted_snapshot, f"unknown/corrupt record {data[:80]!r} in {shard_id}"
                assert data not in seen, f"duplicated record {data[:80]!r}"
                seen[data] = (shard_id, r["SequenceNumber"])
        missing = [d for d in acked_snapshot if d not in seen]
        assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
        for data, where in acked_snapshot.items():
            assert seen[data] == where, f"record {data[:60]!r} moved from {where} to {seen[data]}"

        # New writes continue each shard's sequence past everything recovered.
        last = {s: int(recs[-1]["SequenceNumber"]) for s, recs in by_shard.items() if recs}
        r = client.put_records(StreamName="crash", Records=[
            {"Data": b"after-restart", "PartitionKey": f"k{i}"} for i in range(100)])
        assert r["FailedRecordCount"] == 0
        for res in r["Records"]:
            assert int(res["SequenceNumber"]) > last.get(res["ShardId"], -1)
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()


def test_restart_keeps_streams_and_metadata():
    srv = kin.RunnelProcess().start()
    try:
        c = kin.make_client(srv.endpoint)
        c.create_stream(StreamName="keep", ShardCount=2)
        kin.wait_status(c, "keep")
        c.add_tags_to_stream(StreamName="keep", Tags={"owner": "e2e"})
        c.increase_stream_retention_period(StreamName="keep", RetentionPeriodHours=48)
        kin.wait_status(c, "keep")
        c.create_stream(StreamName="gone", ShardCount=1)
        kin.wait_status(c, "gone")
        c.delete_stream(StreamName="gone")
        kin.wait_gone(c, "gone")
        puts = [c.put_record(StreamName="keep", Data=b"%d" % i, PartitionKey=f"k{i}") for i in range(20)]
        shards_before = kin.list_all_shards(c, "keep")

        srv.stop()  # graceful
        srv.start()
        c = kin.make_client(srv.endpoint)
        summary = kin.wait_status(c, "keep")
        assert summary["RetentionPeriodHours"] == 48
        assert c.list_tags_for_stream(StreamName="keep")["Tags"] == [{"Key": "owner", "Value": "e2e"}]
        assert "gone" not in c.list_streams()["StreamNames"]
        assert [(s["ShardId"], s["HashKeyRange"]) for s in kin.list_all_shards(c, "keep")] == \
               [(s["ShardId"], s["HashKeyRange"]) for s in shards_before]
        got = {s["ShardId"]: kin.read_shard(c, "keep", s["ShardId"]) for s in shards_before}
        for i, p in enumerate(puts):
            assert (p["SequenceNumber"], b"%d" % i) in [(r["SequenceNumber"], r["Data"]) for r in got[p["ShardId"]]]
        assert sum(len(v) for v in got.values()) == 20
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()
