"""Stream lifecycle: CreateStream, DeleteStream, DescribeStream(Summary), ListStreams, DescribeLimits."""

import datetime

import pytest

import kin


def test_create_describe_summary(kinesis, make_stream):
    name = make_stream(3)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamName"] == name
    assert s["StreamARN"] == kin.stream_arn(name)
    assert s["StreamStatus"] == "ACTIVE"
    assert s["RetentionPeriodHours"] == 24
    assert s["OpenShardCount"] == 3
    assert isinstance(s["StreamCreationTimestamp"], datetime.datetime)
    assert isinstance(s["EnhancedMonitoring"], list)
    assert s.get("EncryptionType", "NONE") == "NONE"


@pytest.mark.kinesalite_diverges(reason="no StreamModeDetails")
def test_create_provisioned_reports_mode(kinesis, make_stream):
    name = make_stream(2)
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}


def test_create_initial_status_then_active(kinesis, stream_name, make_stream):
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)
    try:
        status = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]["StreamStatus"]
        assert status in ("CREATING", "ACTIVE")
        kin.wait_status(kinesis, stream_name, "ACTIVE")
    finally:
        kin.wait_status(kinesis, stream_name, "ACTIVE")
        kinesis.delete_stream(StreamName=stream_name)
        kin.wait_gone(kinesis, stream_name)


def test_describe_stream_shards_cover_hash_space(kinesis, make_stream):
    name = make_stream(5)
    d = kinesis.describe_stream(StreamName=name)["StreamDescription"]
    assert d["StreamName"] == name
    assert d["StreamARN"] == kin.stream_arn(name)
    assert d["StreamStatus"] == "ACTIVE"
    assert d["HasMoreShards"] is False
    assert d["RetentionPeriodHours"] == 24
    shards = d["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(5)]
    # Contiguous, non-overlapping, covering [0, 2^128 - 1].
    expect_start = 0
    for s in shards:
        start = int(s["HashKeyRange"]["StartingHashKey"])
        end = int(s["HashKeyRange"]["EndingHashKey"])
        assert start == expect_start and end >= start
        expect_start = end + 1
        kin.assert_seq(s["SequenceNumberRange"]["StartingSequenceNumber"])
        assert "EndingSequenceNumber" not in s["SequenceNumberRange"]
        assert "ParentShardId" not in s
    assert expect_start == kin.HASH_KEY_MAX + 1


@pytest.mark.kinesalite_diverges(reason="DescribeStream ignores Limit")
def test_describe_stream_paging(kinesis, make_stream):
    name = make_stream(5)
    d = kinesis.describe_stream(StreamName=name, Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == ["shardId-000000000000", "shardId-000000000001"]
    assert d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamName=name, Limit=2,
                                ExclusiveStartShardId="shardId-000000000001")["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == ["shardId-000000000002", "shardId-000000000003"]
    assert d["HasMoreShards"] is True
    d = kinesis.describe_stream(StreamName=name, Limit=2,
                                ExclusiveStartShardId="shardId-000000000003")["StreamDescription"]
    assert [s["ShardId"] for s in d["Shards"]] == ["shardId-000000000004"]
    assert d["HasMoreShards"] is False
    d = kinesis.describe_stream(StreamName=name, ExclusiveStartShardId="shardId-000000000004")["StreamDescription"]
    assert d["Shards"] == [] and d["HasMoreShards"] is False


def test_describe_stream_limit_out_of_range(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.describe_stream, StreamName=stream, Limit=0,
                     contains=("limit",))
    kin.expect_error("ValidationException", kinesis_nv.describe_stream, StreamName=stream, Limit=10001,
                     contains=("limit",))


@pytest.mark.parametrize("op", ["describe_stream", "describe_stream_summary", "delete_stream"])
def test_missing_stream_not_found(kinesis, stream_name, op):
    kin.expect_error("ResourceNotFoundException", getattr(kinesis, op), StreamName=stream_name,
                     message=kin.not_found_message(stream_name))


@pytest.mark.kinesalite_diverges(reason="StreamName is required; no StreamARN")
@pytest.mark.parametrize("op", ["describe_stream", "describe_stream_summary", "delete_stream"])
def test_neither_name_nor_arn(kinesis_nv, op):
    kin.expect_error("ValidationException", getattr(kinesis_nv, op))


def test_create_duplicate_in_use(kinesis, make_stream):
    name = make_stream(1)
    kin.expect_error("ResourceInUseException", kinesis.create_stream, StreamName=name, ShardCount=1,
                     message=kin.in_use_message(name))


def test_create_invalid_name(kinesis):
    kin.expect_error(
        "ValidationException", kinesis.create_stream, StreamName="a b", ShardCount=1,
        message="1 validation error detected: Value 'a b' at 'streamName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")


def test_create_name_too_long(kinesis_nv):
    kin.expect_error("ValidationException", kinesis_nv.create_stream, StreamName="a" * 129, ShardCount=1,
                     contains=("streamName", "128"))


def test_create_shard_count_zero(kinesis_nv, stream_name):
    kin.expect_error("ValidationException", kinesis_nv.create_stream, StreamName=stream_name, ShardCount=0,
                     contains=("shardCount",))


def test_create_over_shard_limit(kinesis, endpoint, stream_name):
    # botocore's standard retry mode treats LimitExceededException as throttling; ask once.
    once = kin.make_client(endpoint, retry_throttling=False)
    msg = kin.expect_error("LimitExceededException", once.create_stream, StreamName=stream_name,
                           ShardCount=501)
    assert "limit" in msg.lower()
    kin.expect_error("ResourceNotFoundException", kinesis.describe_stream_summary, StreamName=stream_name)


@pytest.mark.kinesalite_diverges(reason="no on-demand mode")
def test_create_on_demand(kinesis, make_stream):
    name = make_stream(None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    s = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert s["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert s["OpenShardCount"] == 4
    assert len(kin.list_all_shards(kinesis, name)) == 4


def test_delete_stream(kinesis, stream_name):
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)
    kin.wait_status(kinesis, stream_name, "ACTIVE")
    kinesis.delete_stream(StreamName=stream_name, EnforceConsumerDeletion=True)
    try:
        status = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]["StreamStatus"]
        assert status == "DELETING"
    except kinesis.exceptions.ResourceNotFoundException:
        pass
    kin.wait_gone(kinesis, stream_name)
    assert stream_name not in kinesis.list_streams(ExclusiveStartStreamName=stream_name[:-1])["StreamNames"]


def test_recreate_after_delete_is_empty(kinesis, make_stream):
    name = make_stream(1)
    kinesis.put_record(StreamName=name, Data=b"old", PartitionKey="k")
    kinesis.delete_stream(StreamName=name)
    kin.wait_gone(kinesis, name)
    make_stream(1, name=name)
    assert kin.read_shard(kinesis, name, "shardId-000000000000") == []


def test_list_streams_paging(kinesis, make_stream, request):
    import uuid
    prefix = f"zz-ls-{uuid.uuid4().hex[:8]}"
    names = [make_stream(1, name=f"{prefix}-{i}") for i in range(3)]
    start = prefix  # every name of ours sorts after the bare prefix, nothing else between
    r = kinesis.list_streams(ExclusiveStartStreamName=start, Limit=2)
    assert r["StreamNames"] == names[:2]
    assert r["HasMoreStreams"] is True
    r = kinesis.list_streams(ExclusiveStartStreamName=names[1], Limit=1)
    assert r["StreamNames"] == [names[2]]
    r = kinesis.list_streams()
    assert all(n in r["StreamNames"] for n in names)
    assert r["StreamNames"] == sorted(r["StreamNames"])


@pytest.mark.kinesalite_diverges(reason="no StreamSummaries / NextToken in ListStreams")
def test_list_streams_summaries_and_next_token(kinesis, make_stream):
    import uuid
    prefix = f"zz-lt-{uuid.uuid4().hex[:8]}"
    names = [make_stream(1, name=f"{prefix}-{i}") for i in range(3)]
    r = kinesis.list_streams(ExclusiveStartStreamName=prefix, Limit=1)
    assert r["StreamNames"] == [names[0]]
    assert r["HasMoreStreams"] is True
    summaries = r["StreamSummaries"]
    assert len(summaries) == 1
    s = summaries[0]
    assert s["StreamName"] == names[0]
    assert s["StreamARN"] == kin.stream_arn(names[0])
    assert s["StreamStatus"] == "ACTIVE"
    assert s["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert isinstance(s["StreamCreationTimestamp"], datetime.datetime)
    token = r["NextToken"]
    r = kinesis.list_streams(NextToken=token, Limit=1)
    assert r["StreamNames"] == [names[1]]
    assert [x["StreamName"] for x in r["StreamSummaries"]] == [names[1]]


def test_list_streams_limit_out_of_range(kinesis_nv):
    kin.expect_error("ValidationException", kinesis_nv.list_streams, Limit=0, contains=("limit",))
    kin.expect_error("ValidationException", kinesis_nv.list_streams, Limit=10001, contains=("limit",))


@pytest.mark.kinesalite_diverges(reason="no DescribeLimits")
def test_describe_limits(kinesis, make_stream):
    before = kinesis.describe_limits()
    assert before["ShardLimit"] == 500
    for k in ("OpenShardCount", "OnDemandStreamCount", "OnDemandStreamCountLimit"):
        assert isinstance(before[k], int) and before[k] >= 0
    assert before["OnDemandStreamCountLimit"] >= 1
    make_stream(3)
    after = kinesis.describe_limits()
    assert after["OpenShardCount"] == before["OpenShardCount"] + 3
    make_stream(None, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    after2 = kinesis.describe_limits()
    assert after2["OnDemandStreamCount"] == before["OnDemandStreamCount"] + 1
    assert after2["ShardLimit"] == 500
