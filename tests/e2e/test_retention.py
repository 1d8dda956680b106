"""Retention: Increase/DecreaseStreamRetentionPeriod and enforcement via the test clock."""

import pytest

import kin

HOUR_MS = 3600 * 1000


def _retention(kinesis, name):
    return kin.wait_status(kinesis, name, "ACTIVE")["RetentionPeriodHours"]


def test_increase_then_decrease(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=72)
    assert _retention(kinesis, stream) == 72
    kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    assert _retention(kinesis, stream) == 48
    assert kinesis.describe_stream(StreamName=stream)["StreamDescription"]["RetentionPeriodHours"] == 48
    kinesis.decrease_stream_retention_period(StreamName=stream, RetentionPeriodHours=24)
    assert _retention(kinesis, stream) == 24


@pytest.mark.kinesalite_diverges(reason="kinesalite caps retention at 168 hours")
def test_increase_to_max(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=8760)
    assert _retention(kinesis, stream) == 8760


def test_increase_not_increasing(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    _retention(kinesis, stream)
    kin.expect_error("InvalidArgumentException", kinesis.increase_stream_retention_period,
                     StreamName=stream, RetentionPeriodHours=36, contains=("36",))


def test_decrease_not_decreasing(kinesis, stream):
    kin.expect_error("InvalidArgumentException", kinesis.decrease_stream_retention_period,
                     StreamName=stream, RetentionPeriodHours=48, contains=("48",))


@pytest.mark.kinesalite_diverges(reason="kinesalite's maximum is 168 hours")
def test_increase_over_max(kinesis, stream):
    kin.expect_error("InvalidArgumentException", kinesis.increase_stream_retention_period,
                     StreamName=stream, RetentionPeriodHours=8761, contains=("8761",))


def test_decrease_under_min(kinesis, stream):
    kinesis.increase_stream_retention_period(StreamName=stream, RetentionPeriodHours=48)
    _retention(kinesis, stream)
    kin.expect_error("InvalidArgumentException", kinesis.decrease_stream_retention_period,
                     StreamName=stream, RetentionPeriodHours=23, contains=("23",))
    assert _retention(kinesis, stream) == 48


def test_retention_missing_stream(kinesis, stream_name):
    for op in (kinesis.increase_stream_retention_period, kinesis.decrease_stream_retention_period):
        kin.expect_error("ResourceNotFoundException", op, StreamName=stream_name, RetentionPeriodHours=48,
                         message=kin.not_found_message(stream_name))


@pytest.mark.runnel_only
def test_retention_enforced_on_read(kinesis, make_stream, clock):
    short = make_stream(1)
    long = make_stream(1)
    kinesis.increase_stream_retention_period(StreamName=long, RetentionPeriodHours=48)
    _retention(kinesis, long)
    for name in (short, long):
        kinesis.put_records(StreamName=name, Records=[
            {"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(10)])
        assert len(kin.read_shard(kinesis, name, "shardId-000000000000")) == 10
    clock.advance(25 * HOUR_MS)
    assert kin.read_shard(kinesis, short, "shardId-000000000000") == []
    assert len(kin.read_shard(kinesis, long, "shardId-000000000000")) == 10
    # Records written after the cut are readable from TRIM_HORIZON.
    put = kinesis.put_record(StreamName=short, Data=b"fresh", PartitionKey="k")
    got = kin.read_shard(kinesis, short, "shardId-000000000000")
    assert [(r["SequenceNumber"], r["Data"]) for r in got] == [(put["SequenceNumber"], b"fresh")]
    clock.advance(24 * HOUR_MS)
    assert kin.read_shard(kinesis, long, "shardId-000000000000") == []


@pytest.mark.runnel_only
def test_retention_sweep_reclaims_disk():
    """Own server with small segments: expired segments are deleted and the data dir shrinks."""
    import requests

    srv = kin.RunnelProcess(extra_args=["--segment-bytes", "65536"]).start()
    try:
        c = kin.make_client(srv.endpoint)
        c.create_stream(StreamName="ret", ShardCount=2)
        kin.wait_status(c, "ret")
        payload = bytes(range(256)) * 8  # 2 KiB
        for batch in range(8):  # 8 * 200 * 2 KiB = 3.2 MiB over 2 shards
            kin.put_all(c, "ret", [{"Data": payload, "PartitionKey": f"{batch}-{i}"} for i in range(200)])
        size_before = kin.dir_bytes(srv.data_dir)
        assert size_before >= 3 * 1024 * 1024
        requests.post(srv.endpoint + "/_runnel/test/clock/advance", json={"ms": 25 * HOUR_MS},
                      timeout=30).raise_for_status()
        res = requests.post(srv.endpoint + "/_runnel/test/retention", timeout=120)
        res.raise_for_status()
        body = res.json()
        assert body["segments_deleted"] > 0
        assert body["bytes_reclaimed"] >= 2 * 1024 * 1024
        size_after = kin.dir_bytes(srv.data_dir)
        assert size_after <= size_before - 2 * 1024 * 1024
        for shard in ("shardId-000000000000", "shardId-000000000001"):
            assert kin.read_shard(c, "ret", shard) == []
        put = c.put_record(StreamName="ret", Data=b"after", PartitionKey="x")
        got = kin.read_shard(c, "ret", put["ShardId"])
        assert [r["Data"] for r in got] == [b"after"]
        # A second sweep keeps the live record.
        requests.post(srv.endpoint + "/_runnel/test/retention", timeout=120).raise_for_status()
        assert [r["Data"] for r in kin.read_shard(c, "ret", put["ShardId"])] == [b"after"]
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()
