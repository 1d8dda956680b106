"""AWS behaviours runnel once deviated from (issue: Data Streams hardening, item 1).

Messages are AWS's, as the AWS-derived emulators' test suites record them
from the real service (kinesalite's test/splitShard.js and
test/getShardIterator.js)."""

from __future__ import annotations

import time

import pytest

import kin

ACCOUNT = "000000000000"
MAX_HASH = 2**128 - 1


def _split_error(name: str, key: int, start: int, end: int) -> str:
    return (
        f"NewStartingHashKey {key} used in SplitShard() on shard shardId-000000000000 in stream "
        f"{name} under account {ACCOUNT} is not both greater than one plus the shard's "
        f"StartingHashKey {start} and less than the shard's EndingHashKey {end}."
    )


@pytest.mark.parametrize("key", [0, 1, MAX_HASH])
def test_split_shard_key_must_lie_strictly_inside(kinesis, stream, key):
    kin.expect_error(
        "InvalidArgumentException", kinesis.split_shard, StreamName=stream,
        ShardToSplit="shardId-000000000000", NewStartingHashKey=str(key),
        message=_split_error(stream, key, 0, MAX_HASH),
    )
    # Nothing changed: still one open shard.
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    assert [s["ShardId"] for s in shards] == ["shardId-000000000000"]


def test_split_shard_at_the_smallest_and_largest_allowed_keys(kinesis, make_stream):
    for key in (2, MAX_HASH - 1):
        name = make_stream(1)
        kinesis.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                            NewStartingHashKey=str(key))
        kin.wait_status(kinesis, name, "ACTIVE")
        open_shards = [s for s in kinesis.list_shards(StreamName=name)["Shards"]
                       if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
        starts = sorted(int(s["HashKeyRange"]["StartingHashKey"]) for s in open_shards)
        assert starts == [0, key]


def _iterator_error(kind: str, has_sequence: bool) -> str:
    return (
        "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
        "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. "
        f"Request specified {kind} and {'also a' if has_sequence else 'no'} StartingSequenceNumber."
    )


@pytest.mark.parametrize("kind", ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"])
def test_get_shard_iterator_refuses_a_sequence_number_it_cannot_use(kinesis, stream, kind):
    seq = kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")["SequenceNumber"]
    extra = {"Timestamp": 1} if kind == "AT_TIMESTAMP" else {}
    kin.expect_error(
        "InvalidArgumentException", kinesis.get_shard_iterator, StreamName=stream,
        ShardId="shardId-000000000000", ShardIteratorType=kind, StartingSequenceNumber=seq,
        message=_iterator_error(kind, True), **extra,
    )


@pytest.mark.parametrize("kind", ["AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"])
def test_get_shard_iterator_by_sequence_needs_one(kinesis, stream, kind):
    kin.expect_error(
        "InvalidArgumentException", kinesis.get_shard_iterator, StreamName=stream,
        ShardId="shardId-000000000000", ShardIteratorType=kind,
        message=_iterator_error(kind, False),
    )


def test_get_shard_iterator_valid_combinations_still_work(kinesis, stream):
    seq = kinesis.put_record(StreamName=stream, Data=b"x", PartitionKey="k")["SequenceNumber"]
    for kind, extra in [("TRIM_HORIZON", {}), ("LATEST", {}),
                        ("AT_SEQUENCE_NUMBER", {"StartingSequenceNumber": seq}),
                        ("AFTER_SEQUENCE_NUMBER", {"StartingSequenceNumber": seq}),
                        ("AT_TIMESTAMP", {"Timestamp": 1})]:
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId="shardId-000000000000",
                                        ShardIteratorType=kind, **extra)["ShardIterator"]
        assert it


def test_describe_stream_summary_counts_consumers(kinesis, stream):
    arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]

    def count() -> int:
        return kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["ConsumerCount"]

    assert count() == 0
    a = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="a")["Consumer"]["ConsumerARN"]
    assert count() == 1
    kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="b")
    assert count() == 2
    kinesis.deregister_stream_consumer(ConsumerARN=a)
    # A deregistering consumer still counts until it is gone, then it does not.
    deadline = time.time() + 30
    while count() != 1:
        assert time.time() < deadline, "deregistered consumer still counted after 30 s"
        time.sleep(0.1)
