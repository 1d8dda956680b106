"""ListShards: paging, NextToken rules, ExclusiveStartShardId, ShardFilter."""

import pytest
from botocore.exceptions import ClientError

import kin

IDS = [f"shardId-{i:012d}" for i in range(5)]


def _ids(resp):
    return [s["ShardId"] for s in resp["Shards"]]


def test_list_shards_all(kinesis, make_stream):
    name = make_stream(5)
    r = kinesis.list_shards(StreamName=name)
    assert _ids(r) == IDS
    assert "NextToken" not in r
    assert r["Shards"] == kin.list_all_shards(kinesis, name)


@pytest.mark.kinesalite_diverges(reason="ListShards ignores MaxResults; NextToken alone crashes it")
def test_list_shards_paging(kinesis, make_stream):
    name = make_stream(5)
    r = kinesis.list_shards(StreamName=name, MaxResults=2)
    assert _ids(r) == IDS[:2]
    r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=2)
    assert _ids(r) == IDS[2:4]
    r = kinesis.list_shards(NextToken=r["NextToken"], MaxResults=2)
    assert _ids(r) == IDS[4:]
    assert "NextToken" not in r


@pytest.mark.kinesalite_diverges(reason="ListShards ignores MaxResults; NextToken alone crashes it")
def test_list_shards_next_token_with_stream_name(kinesis, make_stream):
    name = make_stream(3)
    tok = kinesis.list_shards(StreamName=name, MaxResults=1)["NextToken"]
    kin.expect_error("InvalidArgumentException", kinesis.list_shards, StreamName=name, NextToken=tok,
                     contains=("NextToken",))


@pytest.mark.kinesalite_diverges(reason="ListShards ignores MaxResults; NextToken alone crashes it")
def test_list_shards_bad_next_token(kinesis):
    kin.expect_error("InvalidArgumentException", kinesis.list_shards, NextToken="garbage-token")


def test_list_shards_exclusive_start(kinesis, make_stream):
    name = make_stream(5)
    assert _ids(kinesis.list_shards(StreamName=name, ExclusiveStartShardId=IDS[1])) == IDS[2:]
    assert _ids(kinesis.list_shards(StreamName=name, ExclusiveStartShardId=IDS[4])) == []


def test_list_shards_max_results_out_of_range(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.list_shards, StreamName=stream, MaxResults=0,
                     contains=("maxResults",))
    kin.expect_error("ValidationException", kinesis_nv.list_shards, StreamName=stream, MaxResults=10001,
                     contains=("maxResults",))


def test_list_shards_missing_stream(kinesis, stream_name):
    kin.expect_error("ResourceNotFoundException", kinesis.list_shards, StreamName=stream_name,
                     contains=(stream_name,))


@pytest.mark.kinesalite_diverges(reason="no ShardFilter")
@pytest.mark.parametrize("ftype", ["AT_LATEST", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON"])
def test_list_shards_filter_all_open(kinesis, make_stream, ftype):
    # Without resharding every shard is open and reaches back to the trim horizon.
    name = make_stream(3)
    assert _ids(kinesis.list_shards(StreamName=name, ShardFilter={"Type": ftype})) == IDS[:3]


@pytest.mark.kinesalite_diverges(reason="no ShardFilter")
def test_list_shards_filter_after_shard_id(kinesis, make_stream):
    name = make_stream(4)
    r = kinesis.list_shards(StreamName=name, ShardFilter={"Type": "AFTER_SHARD_ID", "ShardId": IDS[1]})
    assert _ids(r) == IDS[2:4]


@pytest.mark.kinesalite_diverges(reason="no ShardFilter")
def test_list_shards_filter_after_shard_id_needs_id(kinesis, make_stream):
    name = make_stream(2)
    kin.expect_error("InvalidArgumentException", kinesis.list_shards, StreamName=name,
                     ShardFilter={"Type": "AFTER_SHARD_ID"}, contains=("ShardId",))


def test_list_shards_needs_stream_or_token(kinesis):
    # kinesalite (copying AWS before StreamARN existed) answers InvalidArgumentException
    # "Either NextToken or StreamName should be provided."; runnel follows the general
    # rule for a missing stream identifier (ValidationException). Both name the field.
    with pytest.raises(ClientError) as excinfo:
        kinesis.list_shards()
    code, msg = kin.client_error(excinfo)
    assert code in ("InvalidArgumentException", "ValidationException"), (code, msg)
    assert "StreamName" in msg
