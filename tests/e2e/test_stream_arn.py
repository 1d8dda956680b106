"""Every operation that accepts StreamARN works with it instead of StreamName.
(kinesalite predates StreamARN, so the whole module diverges there.)"""

import pytest

import kin

pytestmark = pytest.mark.kinesalite_diverges(reason="no StreamARN parameter")

SHARD0 = "shardId-000000000000"


def test_read_and_write_by_arn(kinesis, stream):
    arn = kin.stream_arn(stream)
    assert kinesis.describe_stream(StreamARN=arn)["StreamDescription"]["StreamName"] == stream
    assert kinesis.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["StreamName"] == stream
    assert [s["ShardId"] for s in kinesis.list_shards(StreamARN=arn)["Shards"]] == [SHARD0]
    p1 = kinesis.put_record(StreamARN=arn, Data=b"one", PartitionKey="k")
    p2 = kinesis.put_records(StreamARN=arn, Records=[{"Data": b"two", "PartitionKey": "k"}])
    assert p2["FailedRecordCount"] == 0
    it = kinesis.get_shard_iterator(StreamARN=arn, ShardId=SHARD0, ShardIteratorType="TRIM_HORIZON")
    r = kinesis.get_records(StreamARN=arn, ShardIterator=it["ShardIterator"])
    assert [(x["SequenceNumber"], x["Data"]) for x in r["Records"]] == [
        (p1["SequenceNumber"], b"one"), (p2["Records"][0]["SequenceNumber"], b"two")]
    it = kinesis.get_shard_iterator(StreamARN=arn, ShardId=SHARD0, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                    StartingSequenceNumber=p1["SequenceNumber"])
    assert [x["Data"] for x in kinesis.get_records(ShardIterator=it["ShardIterator"])["Records"]] == [b"two"]


def test_tags_and_retention_by_arn(kinesis, stream):
    arn = kin.stream_arn(stream)
    kinesis.add_tags_to_stream(StreamARN=arn, Tags={"a": "1", "b": "2"})
    kinesis.remove_tags_from_stream(StreamARN=arn, TagKeys=["a"])
    assert kinesis.list_tags_for_stream(StreamARN=arn)["Tags"] == [{"Key": "b", "Value": "2"}]
    kinesis.increase_stream_retention_period(StreamARN=arn, RetentionPeriodHours=30)
    assert kin.wait_status(kinesis, stream)["RetentionPeriodHours"] == 30
    kinesis.decrease_stream_retention_period(StreamARN=arn, RetentionPeriodHours=25)
    assert kin.wait_status(kinesis, stream)["RetentionPeriodHours"] == 25


def test_delete_by_arn(kinesis, stream):
    kinesis.delete_stream(StreamARN=kin.stream_arn(stream), EnforceConsumerDeletion=True)
    kin.wait_gone(kinesis, stream)


@pytest.mark.parametrize("call", [
    lambda c, arn: c.describe_stream(StreamARN=arn),
    lambda c, arn: c.describe_stream_summary(StreamARN=arn),
    lambda c, arn: c.list_shards(StreamARN=arn),
    lambda c, arn: c.put_record(StreamARN=arn, Data=b"x", PartitionKey="k"),
    lambda c, arn: c.put_records(StreamARN=arn, Records=[{"Data": b"x", "PartitionKey": "k"}]),
    lambda c, arn: c.get_shard_iterator(StreamARN=arn, ShardId=SHARD0, ShardIteratorType="LATEST"),
    lambda c, arn: c.list_tags_for_stream(StreamARN=arn),
    lambda c, arn: c.add_tags_to_stream(StreamARN=arn, Tags={"a": "b"}),
    lambda c, arn: c.increase_stream_retention_period(StreamARN=arn, RetentionPeriodHours=48),
    lambda c, arn: c.delete_stream(StreamARN=arn),
], ids=["DescribeStream", "DescribeStreamSummary", "ListShards", "PutRecord", "PutRecords",
        "GetShardIterator", "ListTagsForStream", "AddTagsToStream", "IncreaseRetention", "DeleteStream"])
def test_unknown_arn_not_found(kinesis, stream_name, call):
    kin.expect_error("ResourceNotFoundException", call, kinesis, kin.stream_arn(stream_name),
                     contains=(stream_name,))


def test_malformed_arn(kinesis_nv):
    kin.expect_error("ValidationException", kinesis_nv.describe_stream_summary, StreamARN="not-an-arn",
                     contains=("streamARN",))
