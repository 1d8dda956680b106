"""Damaged log data on a stopped server: start-up refuses by default, and
with --on-corruption skip serves every intact record, reports the loss and
never reissues a sequence number."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

import kin

BATCHES = 5
PER_BATCH = 100
# Segment header (32) + the empty shard table of a new log (56) is where the
# first records frame starts; 60 bytes into it is inside its first record.
FIRST_FRAME = 32 + 56


def _fill(srv) -> list[dict]:
    client = kin.make_client(srv.endpoint)
    client.create_stream(StreamName="dmg", ShardCount=1)
    kin.wait_status(client, "dmg")
    for b in range(BATCHES):
        r = client.put_records(StreamName="dmg", Records=[
            {"Data": f"b{b}-{i}".encode(), "PartitionKey": "k"} for i in range(PER_BATCH)])
        assert r["FailedRecordCount"] == 0
    shard = kin.list_all_shards(client, "dmg")[0]["ShardId"]
    records = kin.read_shard(client, "dmg", shard)
    assert len(records) == BATCHES * PER_BATCH
    return records


def _flip_first_frame(srv) -> str:
    seg = srv.data_dir / "log" / "00000000000000000000.seg"
    data = bytearray(seg.read_bytes())
    data[FIRST_FRAME + 60] ^= 0x5A
    seg.write_bytes(bytes(data))
    return seg.name


def _health(endpoint: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(endpoint + "/health", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_byte_flip_refuses_start_then_skip_keeps_every_intact_record():
    srv = kin.RunnelProcess().start()
    try:
        before = _fill(srv)
        assert _health(srv.endpoint) == (200, "ok\n")
        srv.stop()
        name = _flip_first_frame(srv)

        with pytest.raises(RuntimeError) as e:
            srv.start()
        assert "process exited" in str(e.value)
        tail = srv.log_tail()
        assert "cannot open the record log" in tail
        assert f"{name} is damaged at bytes {FIRST_FRAME}.." in tail
        assert "--on-corruption skip" in tail
        assert not (srv.data_dir / "log" / f"{name}.damaged").exists(), "refusing must change nothing"

        srv.extra_args = ["--on-corruption", "skip"]
        srv.start()
        client = kin.make_client(srv.endpoint)
        shard = kin.list_all_shards(client, "dmg")[0]["ShardId"]
        after = kin.read_shard(client, "dmg", shard)
        # The first batch was one frame: exactly it is lost, the rest is intact
        # with the same sequence numbers.
        want = [(r["SequenceNumber"], r["Data"]) for r in before[PER_BATCH:]]
        assert [(r["SequenceNumber"], r["Data"]) for r in after] == want
        assert (srv.data_dir / "log" / f"{name}.damaged").exists()

        status, body = _health(srv.endpoint)
        assert status == 503
        assert "log recovery skipped damaged data" in body and name in body
        with urllib.request.urlopen(srv.endpoint + "/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "\nrunnel_log_damaged_ranges 1\n" in metrics
        assert "\nrunnel_log_open_segments " in metrics and "\nrunnel_log_cache_bytes " in metrics

        last = max(int(r["SequenceNumber"]) for r in before)
        r = client.put_records(StreamName="dmg", Records=[
            {"Data": b"new", "PartitionKey": "k"} for _ in range(10)])
        assert r["FailedRecordCount"] == 0
        for res in r["Records"]:
            assert int(res["SequenceNumber"]) > last
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()


def _stream_with_records(srv) -> list[dict]:
    client = kin.make_client(srv.endpoint)
    client.create_stream(StreamName="old", ShardCount=1)
    kin.wait_status(client, "old")
    r = client.put_records(StreamName="old", Records=[
        {"Data": f"old-{i}".encode(), "PartitionKey": "k"} for i in range(20)])
    assert r["FailedRecordCount"] == 0
    return r["Records"]


def test_lost_catalog_refuses_start_and_never_reuses_a_stream():
    srv = kin.RunnelProcess().start()
    try:
        _stream_with_records(srv)
        srv.stop()
        (srv.data_dir / "catalog.redb").unlink()

        with pytest.raises(RuntimeError):
            srv.start()
        tail = srv.log_tail()
        assert "catalog.redb is missing but the record log" in tail
        assert "--discard-orphaned-log-data" in tail

        srv.extra_args = ["--discard-orphaned-log-data"]
        srv.start()
        client = kin.make_client(srv.endpoint)
        assert client.list_streams()["StreamNames"] == []
        # A new stream never sees the old stream's records.
        client.create_stream(StreamName="old", ShardCount=1)
        kin.wait_status(client, "old")
        shard = kin.list_all_shards(client, "old")[0]["ShardId"]
        assert kin.read_shard(client, "old", shard) == []
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupted_catalog_is_a_clear_error_not_a_panic(damage):
    srv = kin.RunnelProcess().start()
    try:
        _stream_with_records(srv)
        srv.stop()
        cat = srv.data_dir / "catalog.redb"
        data = bytearray(cat.read_bytes())
        if damage == "truncate":
            data = data[: len(data) // 3]
        else:
            for at in range(0, len(data), 4096):
                data[at + 100: at + 164] = b"\xa5" * 64
        cat.write_bytes(bytes(data))

        with pytest.raises(RuntimeError):
            srv.start()
        tail = srv.log_tail()
        assert "cannot open the catalog" in tail
        assert "is damaged" in tail and "mv " in tail
        assert "panicked" not in tail
        assert srv.proc.returncode == 1
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()
