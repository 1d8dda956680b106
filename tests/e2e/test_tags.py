"""Tags: AddTagsToStream / RemoveTagsFromStream / ListTagsForStream and the ARN-based
TagResource / UntagResource / ListTagsForResource."""

import pytest

import kin


def _tags(resp):
    return [(t["Key"], t["Value"]) for t in resp["Tags"]]


def test_add_list_remove(kinesis, stream):
    r = kinesis.list_tags_for_stream(StreamName=stream)
    assert r["Tags"] == [] and r["HasMoreTags"] is False
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"b": "2", "a": "1", "e": "5", "d": "4", "c": "3"})
    r = kinesis.list_tags_for_stream(StreamName=stream)
    assert _tags(r) == [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]
    assert r["HasMoreTags"] is False
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"a": "one", "f": ""})
    kinesis.remove_tags_from_stream(StreamName=stream, TagKeys=["b", "d", "not-there"])
    r = kinesis.list_tags_for_stream(StreamName=stream)
    assert _tags(r) == [("a", "one"), ("c", "3"), ("e", "5"), ("f", "")]


def test_list_tags_paging(kinesis, stream):
    kinesis.add_tags_to_stream(StreamName=stream, Tags={k: k.upper() for k in "abcde"})
    r = kinesis.list_tags_for_stream(StreamName=stream, Limit=2)
    assert _tags(r) == [("a", "A"), ("b", "B")] and r["HasMoreTags"] is True
    r = kinesis.list_tags_for_stream(StreamName=stream, Limit=2, ExclusiveStartTagKey="b")
    assert _tags(r) == [("c", "C"), ("d", "D")] and r["HasMoreTags"] is True
    r = kinesis.list_tags_for_stream(StreamName=stream, Limit=2, ExclusiveStartTagKey="d")
    assert _tags(r) == [("e", "E")] and r["HasMoreTags"] is False
    r = kinesis.list_tags_for_stream(StreamName=stream, ExclusiveStartTagKey="bb")
    assert _tags(r) == [("c", "C"), ("d", "D"), ("e", "E")]


def test_list_tags_limit_out_of_range(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.list_tags_for_stream, StreamName=stream, Limit=0,
                     contains=("limit",))
    kin.expect_error("ValidationException", kinesis_nv.list_tags_for_stream, StreamName=stream, Limit=51,
                     contains=("limit",))


def test_tags_missing_stream(kinesis, stream_name):
    msg = kin.not_found_message(stream_name)
    kin.expect_error("ResourceNotFoundException", kinesis.add_tags_to_stream, StreamName=stream_name,
                     Tags={"a": "b"}, message=msg)
    kin.expect_error("ResourceNotFoundException", kinesis.remove_tags_from_stream, StreamName=stream_name,
                     TagKeys=["a"], message=msg)
    kin.expect_error("ResourceNotFoundException", kinesis.list_tags_for_stream, StreamName=stream_name,
                     message=msg)


def test_remove_tags_empty_list(kinesis_nv, stream):
    kin.expect_error("ValidationException", kinesis_nv.remove_tags_from_stream, StreamName=stream, TagKeys=[],
                     contains=("tagKeys",))


@pytest.mark.kinesalite_diverges(reason="no Tags on CreateStream")
def test_create_with_tags(kinesis, make_stream):
    name = make_stream(1, Tags={"team": "data", "env": "test"})
    assert _tags(kinesis.list_tags_for_stream(StreamName=name)) == [("env", "test"), ("team", "data")]


@pytest.mark.kinesalite_diverges(reason="no TagResource/UntagResource/ListTagsForResource")
def test_tag_resource_by_arn(kinesis, stream):
    arn = kin.stream_arn(stream)
    kinesis.tag_resource(ResourceARN=arn, Tags={"x": "1", "y": "2"})
    assert sorted(_tags(kinesis.list_tags_for_resource(ResourceARN=arn))) == [("x", "1"), ("y", "2")]
    # Same tags as the stream-name API sees.
    assert _tags(kinesis.list_tags_for_stream(StreamName=stream)) == [("x", "1"), ("y", "2")]
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["x"])
    assert _tags(kinesis.list_tags_for_resource(ResourceARN=arn)) == [("y", "2")]
    kinesis.add_tags_to_stream(StreamName=stream, Tags={"z": "3"})
    assert sorted(_tags(kinesis.list_tags_for_resource(ResourceARN=arn))) == [("y", "2"), ("z", "3")]


@pytest.mark.kinesalite_diverges(reason="no TagResource/UntagResource/ListTagsForResource")
def test_tag_resource_missing(kinesis, stream_name):
    arn = kin.stream_arn(stream_name)
    kin.expect_error("ResourceNotFoundException", kinesis.tag_resource, ResourceARN=arn, Tags={"a": "b"})
    kin.expect_error("ResourceNotFoundException", kinesis.untag_resource, ResourceARN=arn, TagKeys=["a"])
    kin.expect_error("ResourceNotFoundException", kinesis.list_tags_for_resource, ResourceARN=arn)
