"""PutRecord(s), GetShardIterator and GetRecords."""

import datetime
import os
import time

import pytest

import kin

SHARD0 = "shardId-000000000000"
MIB = 1024 * 1024


# ---------------------------------------------------------------- PutRecord

def test_put_record_routes_by_md5(kinesis, make_stream):
    name = make_stream(4)
    shards = kin.list_all_shards(kinesis, name)
    seen = set()
    for i in range(40):
        pk = f"pk-{i}"
        r = kinesis.put_record(StreamName=name, Data=f"d{i}".encode(), PartitionKey=pk)
        assert r["ShardId"] == kin.shard_for_hash(shards, kin.md5_hash_key(pk)), pk
        kin.assert_seq(r["SequenceNumber"])
        seen.add(r["ShardId"])
    assert len(seen) == 4  # 40 keys hit all 4 quarters


def test_explicit_hash_key_overrides(kinesis, make_stream):
    name = make_stream(3)
    shards = kin.list_all_shards(kinesis, name)
    for s in shards:
        for key in (s["HashKeyRange"]["StartingHashKey"], s["HashKeyRange"]["EndingHashKey"]):
            r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="same-key", ExplicitHashKey=key)
            assert r["ShardId"] == s["ShardId"]
    r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k", ExplicitHashKey=str(kin.HASH_KEY_MAX))
    assert r["ShardId"] == shards[-1]["ShardId"]


def test_explicit_hash_key_out_of_range(kinesis, stream):
    kin.expect_error("InvalidArgumentException", kinesis.put_record, StreamName=stream, Data=b"x",
                     PartitionKey="k", ExplicitHashKey=str(kin.HASH_KEY_MAX + 1), contains=("ExplicitHashKey",))


def test_sequence_numbers_increase(kinesis, stream):
    seqs = [kinesis.put_record(StreamName=stream, Data=b"%d" % i, PartitionKey="k")["SequenceNumber"]
            for i in range(20)]
    kin.assert_increasing(seqs)


def test_sequence_number_for_ordering(kinesis, stream):
    first = kinesis.put_record(StreamName=stream, Data=b"1", PartitionKey="k")["SequenceNumber"]
    second = kinesis.put_record(StreamName=stream, Data=b"2", PartitionKey="k",
                                SequenceNumberForOrdering=first)["SequenceNumber"]
    assert int(second) > int(first)


def test_put_record_missing_stream(kinesis, stream_name):
    kin.expect_error("ResourceNotFoundException", kinesis.put_record, StreamName=stream_name, Data=b"x",
                     PartitionKey="k", message=kin.not_found_message(stream_name))


def test_put_record_partition_key_bounds(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.put_record, StreamName=stream, Data=b"x",
                     PartitionKey="", contains=("partitionKey",))
    kin.expect_error("ValidationException", kinesis_nv.put_record, StreamName=stream, Data=b"x",
                     PartitionKey="p" * 257, contains=("partitionKey",))
    r = kinesis_nv.put_record(StreamName=stream, Data=b"x", PartitionKey="p" * 256)
    assert r["ShardId"] == SHARD0


def test_put_record_missing_partition_key(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.put_record, StreamName=stream, Data=b"x",
                     contains=("partitionKey",))


def test_put_record_max_size(kinesis, stream):
    big = os.urandom(MIB - 256)
    r = kinesis.put_record(StreamName=stream, Data=big, PartitionKey="k")
    got = kin.read_shard(kinesis, stream, SHARD0)
    assert [x["SequenceNumber"] for x in got] == [r["SequenceNumber"]]
    assert got[0]["Data"] == big


def test_put_record_too_big(kinesis, stream):
    # AWS still answers a record over the stream's max record size (1 MiB by
    # default) with ValidationException at 'data', even though the model's Data
    # shape now allows 10 MiB (seen in KPL 1.0.6 reports, Dec 2025).
    kin.expect_error("ValidationException", kinesis.put_record, StreamName=stream,
                     Data=b"x" * (MIB + 1), PartitionKey="k",
                     contains=("'data'", "less than or equal to 1048576"))
    ok = kinesis.put_record(StreamName=stream, Data=b"x" * MIB, PartitionKey="k")
    assert ok["SequenceNumber"]
    assert len(kin.read_shard(kinesis, stream, SHARD0)) == 1


# ---------------------------------------------------------------- PutRecords

def test_put_records_batch(kinesis, make_stream):
    name = make_stream(3)
    shards = kin.list_all_shards(kinesis, name)
    entries = [{"Data": f"rec-{i}".encode(), "PartitionKey": f"key-{i}"} for i in range(500)]
    r = kinesis.put_records(StreamName=name, Records=entries)
    assert r["FailedRecordCount"] == 0
    assert len(r["Records"]) == 500
    by_shard = {}
    for e, res in zip(entries, r["Records"]):
        assert "ErrorCode" not in res
        assert res["ShardId"] == kin.shard_for_hash(shards, kin.md5_hash_key(e["PartitionKey"]))
        by_shard.setdefault(res["ShardId"], []).append((res["SequenceNumber"], e["Data"]))
    for shard_id, expected in by_shard.items():
        kin.assert_increasing([s for s, _ in expected])  # request order within a shard
        got = kin.read_shard(kinesis, name, shard_id)
        assert [(x["SequenceNumber"], x["Data"]) for x in got] == expected


def test_put_records_explicit_hash_key(kinesis, make_stream):
    name = make_stream(2)
    shards = kin.list_all_shards(kinesis, name)
    r = kinesis.put_records(StreamName=name, Records=[
        {"Data": b"a", "PartitionKey": "k", "ExplicitHashKey": "0"},
        {"Data": b"b", "PartitionKey": "k", "ExplicitHashKey": shards[1]["HashKeyRange"]["StartingHashKey"]},
    ])
    assert [x["ShardId"] for x in r["Records"]] == [shards[0]["ShardId"], shards[1]["ShardId"]]


def test_put_records_too_many(kinesis, stream):
    entries = [{"Data": b"x", "PartitionKey": "k"} for _ in range(501)]
    kin.expect_error("ValidationException", kinesis.put_records, StreamName=stream, Records=entries,
                     contains=("records", "500"))
    assert kin.read_shard(kinesis, stream, SHARD0) == []


def test_put_records_empty(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.put_records, StreamName=stream, Records=[],
                     contains=("records",))


@pytest.mark.kinesalite_diverges(reason="kinesalite answers 413 for the big body")
def test_put_records_over_5mib(kinesis, stream):
    entries = [{"Data": b"y" * (MIB - 1024), "PartitionKey": f"k{i}"} for i in range(6)]
    kin.expect_error("InvalidArgumentException", kinesis.put_records, StreamName=stream, Records=entries)
    assert kin.read_shard(kinesis, stream, SHARD0) == []


def test_put_records_missing_stream(kinesis, stream_name):
    kin.expect_error("ResourceNotFoundException", kinesis.put_records, StreamName=stream_name,
                     Records=[{"Data": b"x", "PartitionKey": "k"}], message=kin.not_found_message(stream_name))


# ---------------------------------------------------------------- iterators and reads

@pytest.fixture
def five(kinesis, stream):
    """A 1-shard stream holding five records: returns (name, [(seq, data)])."""
    out = []
    for i in range(5):
        r = kinesis.put_record(StreamName=stream, Data=f"v{i}".encode(), PartitionKey="k")
        out.append((r["SequenceNumber"], f"v{i}".encode()))
    return stream, out


def _pairs(records):
    return [(r["SequenceNumber"], r["Data"]) for r in records]


def test_trim_horizon(kinesis, five):
    name, recs = five
    assert _pairs(kin.read_shard(kinesis, name, SHARD0, "TRIM_HORIZON")) == recs


def test_latest(kinesis, five):
    name, _ = five
    it = kin.iterator(kinesis, name, SHARD0, "LATEST")
    assert kinesis.get_records(ShardIterator=it)["Records"] == []
    r = kinesis.put_record(StreamName=name, Data=b"new", PartitionKey="k")
    assert _pairs(kin.drain(kinesis, it)) == [(r["SequenceNumber"], b"new")]


def test_at_and_after_sequence_number(kinesis, five):
    name, recs = five
    got = kin.read_shard(kinesis, name, SHARD0, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=recs[2][0])
    assert _pairs(got) == recs[2:]
    got = kin.read_shard(kinesis, name, SHARD0, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=recs[2][0])
    assert _pairs(got) == recs[3:]
    got = kin.read_shard(kinesis, name, SHARD0, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=recs[-1][0])
    assert got == []
    got = kin.read_shard(kinesis, name, SHARD0, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=recs[0][0])
    assert _pairs(got) == recs


def test_at_timestamp(kinesis, stream, maybe_clock):
    recs = []
    for i in range(6):
        if maybe_clock is not None:
            maybe_clock.advance(1000)  # distinct arrival times without waiting
        recs.append(kinesis.put_record(StreamName=stream, Data=b"%d" % i, PartitionKey="k")["SequenceNumber"])
    got = kin.read_shard(kinesis, stream, SHARD0)
    assert [r["SequenceNumber"] for r in got] == recs
    stamps = [r["ApproximateArrivalTimestamp"] for r in got]
    assert stamps == sorted(stamps)
    # Records arriving at or after the i-th record's timestamp, for every i where the
    # timestamp differs from the one before (always, with the test clock).
    checked = 0
    for i in range(1, 6):
        if stamps[i] == stamps[i - 1]:
            continue
        want = [s for s, t in zip(recs, stamps) if t >= stamps[i]]
        got_i = kin.read_shard(kinesis, stream, SHARD0, "AT_TIMESTAMP", Timestamp=stamps[i])
        assert [r["SequenceNumber"] for r in got_i] == want
        checked += 1
    assert checked >= 1
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    assert [r["SequenceNumber"] for r in kin.read_shard(kinesis, stream, SHARD0, "AT_TIMESTAMP",
                                                       Timestamp=past)] == recs
    if maybe_clock is not None:
        maybe_clock.advance(1000)
        after_last = stamps[-1] + datetime.timedelta(milliseconds=500)
        assert kin.read_shard(kinesis, stream, SHARD0, "AT_TIMESTAMP", Timestamp=after_last) == []


def test_at_timestamp_in_future(kinesis, stream):
    # AWS (and kinesalite): "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis."
    r = kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")
    rec = kinesis.get_records(ShardIterator=kin.iterator(kinesis, stream, SHARD0))["Records"][0]
    assert rec["SequenceNumber"] == r["SequenceNumber"]
    future = rec["ApproximateArrivalTimestamp"] + datetime.timedelta(hours=1)
    kin.expect_error("InvalidArgumentException", kinesis.get_shard_iterator, StreamName=stream, ShardId=SHARD0,
                     ShardIteratorType="AT_TIMESTAMP", Timestamp=future, contains=("timestamp",))


def test_iterator_missing_arguments(kinesis, five):
    name, recs = five
    for kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        kin.expect_error("InvalidArgumentException", kinesis.get_shard_iterator, StreamName=name,
                         ShardId=SHARD0, ShardIteratorType=kind, contains=("StartingSequenceNumber",))
    kin.expect_error("InvalidArgumentException", kinesis.get_shard_iterator, StreamName=name,
                     ShardId=SHARD0, ShardIteratorType="AT_TIMESTAMP", contains=("Timestamp",))


def test_iterator_bad_type(kinesis, five):
    name, _ = five
    kin.expect_error("ValidationException", kinesis.get_shard_iterator, StreamName=name, ShardId=SHARD0,
                     ShardIteratorType="SOMEWHERE", contains=("shardIteratorType",))


def test_iterator_sequence_number_of_other_shard(kinesis, make_stream):
    name = make_stream(2)
    shards = kin.list_all_shards(kinesis, name)
    r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k",
                           ExplicitHashKey=shards[1]["HashKeyRange"]["StartingHashKey"])
    assert r["ShardId"] == shards[1]["ShardId"]
    kin.expect_error("InvalidArgumentException", kinesis.get_shard_iterator, StreamName=name,
                     ShardId=shards[0]["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
                     StartingSequenceNumber=r["SequenceNumber"], contains=("StartingSequenceNumber",))


def test_iterator_unknown_shard(kinesis, stream):
    kin.expect_error("ResourceNotFoundException", kinesis.get_shard_iterator, StreamName=stream,
                     ShardId="shardId-000000000007", ShardIteratorType="TRIM_HORIZON",
                     contains=("shardId-000000000007",))


def test_iterator_missing_stream(kinesis, stream_name):
    kin.expect_error("ResourceNotFoundException", kinesis.get_shard_iterator, StreamName=stream_name,
                     ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")


def test_get_records_limit_and_chaining(kinesis, stream):
    kinesis.put_records(StreamName=stream, Records=[{"Data": b"%d" % i, "PartitionKey": "k"} for i in range(7)])
    it = kin.iterator(kinesis, stream, SHARD0)
    batches = []
    for _ in range(10):
        r = kinesis.get_records(ShardIterator=it, Limit=3)
        assert isinstance(r["MillisBehindLatest"], int) and r["MillisBehindLatest"] >= 0
        batches.append([x["Data"] for x in r["Records"]])
        it = r["NextShardIterator"]
        if not r["Records"]:
            break
    assert batches == [[b"0", b"1", b"2"], [b"3", b"4", b"5"], [b"6"], []]
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == [] and r["MillisBehindLatest"] == 0
    # The last iterator keeps working as new data arrives.
    kinesis.put_record(StreamName=stream, Data=b"7", PartitionKey="k")
    assert [x["Data"] for x in kinesis.get_records(ShardIterator=r["NextShardIterator"])["Records"]] == [b"7"]


def test_get_records_limit_out_of_range(kinesis_nv, five):
    name, _ = five
    it = kin.iterator(kinesis_nv, name, SHARD0)
    kin.expect_error("ValidationException", kinesis_nv.get_records, ShardIterator=it, Limit=0, contains=("limit",))
    kin.expect_error("ValidationException", kinesis_nv.get_records, ShardIterator=it, Limit=10001,
                     contains=("limit",))


def test_get_records_fields(kinesis, stream, maybe_clock):
    wall_before = time.time()
    r = kinesis.put_record(StreamName=stream, Data=b"hello", PartitionKey="the-key")
    wall_after = time.time()
    rec = kinesis.get_records(ShardIterator=kin.iterator(kinesis, stream, SHARD0))["Records"][0]
    assert rec["SequenceNumber"] == r["SequenceNumber"]
    assert rec["PartitionKey"] == "the-key"
    assert rec["Data"] == b"hello"
    ts = rec["ApproximateArrivalTimestamp"].timestamp()
    offset = maybe_clock.offset_ms / 1000 if maybe_clock is not None else 0
    assert wall_before + offset - 5 <= ts <= wall_after + offset + 5


@pytest.mark.parametrize("data", [
    bytes(range(256)),
    b"\x00",
    b" ",
    b"\xff" * 1000,
    "snow \u2603 and \U0001F600".encode("utf-8"),
    b"{\"json\": [1, 2, 3]}",
    b"\r\n\t\x00\x01",
], ids=["all-bytes", "nul", "space", "ff", "utf8", "json", "ctrl"])
def test_data_round_trip(kinesis, stream, data):
    r = kinesis.put_record(StreamName=stream, Data=data, PartitionKey="k")
    got = kin.read_shard(kinesis, stream, SHARD0)
    assert _pairs(got) == [(r["SequenceNumber"], data)]


def test_data_round_trip_random_batch(kinesis, stream):
    datas = [os.urandom(n) for n in (1, 2, 3, 17, 1000, 65536, 200_000)]
    r = kinesis.put_records(StreamName=stream, Records=[{"Data": d, "PartitionKey": "k"} for d in datas])
    got = kin.read_shard(kinesis, stream, SHARD0)
    assert _pairs(got) == [(x["SequenceNumber"], d) for x, d in zip(r["Records"], datas)]


def test_tampered_iterator(kinesis, five):
    name, _ = five
    it = kin.iterator(kinesis, name, SHARD0)
    mid = len(it) // 2
    for repl in ("A", "B"):
        if it[mid] != repl:
            bad = it[:mid] + repl + it[mid + 1:]
            break
    kin.expect_error("InvalidArgumentException", kinesis.get_records, ShardIterator=bad)
    kin.expect_error("InvalidArgumentException", kinesis.get_records, ShardIterator="not-an-iterator",
                     message="Invalid ShardIterator.")


@pytest.mark.runnel_only
def test_expired_iterator(kinesis, five, clock):
    name, recs = five
    it = kin.iterator(kinesis, name, SHARD0)
    r = kinesis.get_records(ShardIterator=it, Limit=1)
    nxt = r["NextShardIterator"]
    clock.advance(6 * 60 * 1000)
    msg = kin.expect_error("ExpiredIteratorException", kinesis.get_records, ShardIterator=it)
    assert "expired" in msg.lower()
    kin.expect_error("ExpiredIteratorException", kinesis.get_records, ShardIterator=nxt)
    # A fresh iterator after the advance works.
    assert _pairs(kin.read_shard(kinesis, name, SHARD0)) == recs


@pytest.mark.runnel_only
def test_iterator_not_expired_before_5_minutes(kinesis, five, clock):
    name, recs = five
    it = kin.iterator(kinesis, name, SHARD0)
    clock.advance(4 * 60 * 1000)
    assert _pairs(kinesis.get_records(ShardIterator=it)["Records"]) == recs


@pytest.mark.runnel_only
def test_millis_behind_latest(kinesis, stream, clock):
    kinesis.put_record(StreamName=stream, Data=b"old", PartitionKey="k")
    clock.advance(60_000)
    kinesis.put_record(StreamName=stream, Data=b"new", PartitionKey="k")
    r = kinesis.get_records(ShardIterator=kin.iterator(kinesis, stream, SHARD0), Limit=1)
    assert [x["Data"] for x in r["Records"]] == [b"old"]
    assert r["MillisBehindLatest"] > 0
    r = kinesis.get_records(ShardIterator=r["NextShardIterator"])
    assert [x["Data"] for x in r["Records"]] == [b"new"]
    assert r["MillisBehindLatest"] == 0


@pytest.mark.kinesalite_diverges(reason="kinesalite does not cap GetRecords at 10 MiB")
def test_get_records_response_capped_at_10_mib(kinesis, stream):
    datas = [bytes([i]) * (MIB - 1024) for i in range(12)]
    seqs = [kinesis.put_record(StreamName=stream, Data=d, PartitionKey="k")["SequenceNumber"] for d in datas]
    r = kinesis.get_records(ShardIterator=kin.iterator(kinesis, stream, SHARD0))
    first = r["Records"]
    assert 1 <= len(first) < 12
    assert sum(len(x["Data"]) for x in first) <= 10 * MIB
    rest = kin.drain(kinesis, r["NextShardIterator"])
    assert [(x["SequenceNumber"], x["Data"]) for x in first + rest] == list(zip(seqs, datas))


def test_concurrent_puts_one_shard(kinesis, stream, endpoint):
    import threading

    results, errors = [], []
    lock = threading.Lock()

    def worker(w):
        c = kin.make_client(endpoint)
        try:
            for i in range(40):
                d = f"w{w}-{i}".encode()
                r = c.put_record(StreamName=stream, Data=d, PartitionKey=f"{w}")
                with lock:
                    results.append((int(r["SequenceNumber"]), d))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert not errors, errors
    got = kin.read_shard(kinesis, stream, SHARD0)
    assert [(int(x["SequenceNumber"]), x["Data"]) for x in got] == sorted(results)
    assert len({s for s, _ in results}) == 160
    # Each writer's own records are in the order it wrote them.
    for w in range(4):
        mine = [x["Data"] for x in got if x["Data"].startswith(f"w{w}-".encode())]
        assert mine == [f"w{w}-{i}".encode() for i in range(40)]


def test_get_records_after_stream_deleted(kinesis, make_stream):
    name = make_stream(1)
    kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    it = kin.iterator(kinesis, name, SHARD0)
    kinesis.delete_stream(StreamName=name)
    kin.wait_gone(kinesis, name)
    kin.expect_error("ResourceNotFoundException", kinesis.get_records, ShardIterator=it)
