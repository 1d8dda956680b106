"""AWS behaviours runnel once deviated from (issue: Data Streams hardening).

Messages are AWS's, as the AWS-derived emulators' test suites record them
from the real service (kinesalite's test/splitShard.js,
test/getShardIterator.js, test/addTagsToStream.js), as AWS answered SDK users
in public bug reports (base64 blobs), or as the botocore model words the
constraint. docs/compatibility.md lists where kinesalite's recordings are
older than today's AWS."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlparse

import cbor2
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


# ---------------------------------------------------------------- model checks come first

KEY_BOUNDS = ("Map keys must satisfy constraint: [Member must have length less than or equal to 128, "
              "Member must have length greater than or equal to 1]")
VALUE_BOUNDS = ("Map value must satisfy constraint: [Member must have length less than or equal to 256, "
                "Member must have length greater than or equal to 0]")
MEMBER_BOUNDS = ("Member must satisfy constraint: [Member must have length less than or equal to 128, "
                 "Member must have length greater than or equal to 1]")
LONG_KEY = "k" * 129


def _violation(value: str, field: str, constraint: str) -> str:
    return f"Value {value} at '{field}' failed to satisfy constraint: {constraint}"


def _violations(*items: str) -> str:
    n = len(items)
    return f"{n} validation error{'' if n == 1 else 's'} detected: " + "; ".join(items)


def _unknown_stream_calls(name: str):
    """(operation, kwargs, the one violation) against a stream that does not exist."""
    arn = kin.stream_arn(name)
    return [
        ("add_tags_to_stream", {"StreamName": name, "Tags": {LONG_KEY: "v"}},
         _violation(f"'{{{LONG_KEY}=v}}'", "tags", KEY_BOUNDS)),
        ("add_tags_to_stream", {"StreamName": name, "Tags": {"a": "1", "k": "v" * 257}},
         _violation(f"'{{a=1, k={'v' * 257}}}'", "tags", VALUE_BOUNDS)),
        ("tag_resource", {"ResourceARN": arn, "Tags": {LONG_KEY: "v"}},
         _violation(f"'{{{LONG_KEY}=v}}'", "tags", KEY_BOUNDS)),
        ("remove_tags_from_stream", {"StreamName": name, "TagKeys": ["a", LONG_KEY]},
         _violation(f"'[a, {LONG_KEY}]'", "tagKeys", MEMBER_BOUNDS)),
        ("untag_resource", {"ResourceARN": arn, "TagKeys": [LONG_KEY]},
         _violation(f"'[{LONG_KEY}]'", "tagKeys", MEMBER_BOUNDS)),
        ("register_stream_consumer", {"StreamARN": arn, "ConsumerName": "c", "Tags": {LONG_KEY: ""}},
         _violation(f"'{{{LONG_KEY}=}}'", "tags", KEY_BOUNDS)),
        ("describe_stream", {"StreamName": "a" * 200},
         _violation(f"'{'a' * 200}'", "streamName", "Member must have length less than or equal to 128")),
        ("put_record", {"StreamName": name, "Data": b"x", "PartitionKey": "p" * 300},
         _violation(f"'{'p' * 300}'", "partitionKey", "Member must have length less than or equal to 256")),
    ]


@pytest.mark.parametrize("case", range(len(_unknown_stream_calls("x"))))
def test_model_violation_beats_unknown_stream(kinesis_nv, stream_name, case):
    op, kwargs, violation = _unknown_stream_calls(stream_name)[case]
    kin.expect_error("ValidationException", getattr(kinesis_nv, op), **kwargs,
                     message=_violations(violation))


def test_create_stream_checks_tag_lengths_before_creating(kinesis_nv, stream_name):
    kin.expect_error("ValidationException", kinesis_nv.create_stream, StreamName=stream_name,
                     ShardCount=1, Tags={LONG_KEY: "v"},
                     message=_violations(_violation(f"'{{{LONG_KEY}=v}}'", "tags", KEY_BOUNDS)))
    kin.expect_error("ResourceNotFoundException", kinesis_nv.describe_stream_summary,
                     StreamName=stream_name, message=kin.not_found_message(stream_name))


def test_tag_violation_reported_with_the_stream_name_one(kinesis_nv):
    kin.expect_error(
        "ValidationException", kinesis_nv.add_tags_to_stream, StreamName="a b", Tags={LONG_KEY: "v"},
        message=_violations(
            _violation(f"'{{{LONG_KEY}=v}}'", "tags", KEY_BOUNDS),
            _violation("'a b'", "streamName",
                       "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")))


def test_tags_of_the_longest_allowed_lengths_are_taken(kinesis, stream):
    tags = {"k" * 128: "v" * 256, "e": ""}
    kinesis.add_tags_to_stream(StreamName=stream, Tags=tags)
    got = {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(StreamName=stream)["Tags"]}
    assert got == tags


# ---------------------------------------------------------------- every violation in one message

def test_create_stream_reports_two_violations(kinesis_nv):
    kin.expect_error(
        "ValidationException", kinesis_nv.create_stream, StreamName="", ShardCount=0,
        message="2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1; Value '0' at 'shardCount' failed "
                "to satisfy constraint: Member must have value greater than or equal to 1")


def test_create_stream_reports_three_violations(kinesis_nv):
    name = "a" * 129
    kin.expect_error(
        "ValidationException", kinesis_nv.create_stream, StreamName=name, ShardCount=0,
        StreamModeDetails={"StreamMode": "FAST"},
        message=_violations(
            _violation(f"'{name}'", "streamName", "Member must have length less than or equal to 128"),
            _violation("'0'", "shardCount", "Member must have value greater than or equal to 1"),
            _violation("'FAST'", "streamModeDetails.streamMode",
                       "Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]")))


def test_put_record_reports_violations_in_aws_order(kinesis_nv):
    kin.expect_error(
        "ValidationException", kinesis_nv.put_record, StreamName="a b", Data=b"", PartitionKey="",
        ExplicitHashKey="x", SequenceNumberForOrdering="01",
        message=_violations(
            _violation("'01'", "sequenceNumberForOrdering",
                       "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})"),
            _violation("''", "partitionKey", "Member must have length greater than or equal to 1"),
            _violation("'x'", "explicitHashKey",
                       "Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})"),
            _violation("'a b'", "streamName",
                       "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")))


def test_get_shard_iterator_reports_three_violations(kinesis_nv):
    shard = "s" * 129
    kin.expect_error(
        "ValidationException", kinesis_nv.get_shard_iterator, StreamName="", ShardId=shard,
        ShardIteratorType="OLDEST",
        message=_violations(
            _violation(f"'{shard}'", "shardId", "Member must have length less than or equal to 128"),
            _violation("'OLDEST'", "shardIteratorType",
                       "Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, "
                       "TRIM_HORIZON, LATEST, AT_TIMESTAMP]"),
            _violation("''", "streamName", "Member must have length greater than or equal to 1")))


# ---------------------------------------------------------------- tag characters

BAD_TAG_CHARS = ("Some tags contain invalid characters. Valid characters: Unicode letters, digits, "
                 "white space, _ . / = + - % @.")
BAD_TAGS = [{"a\tb": "v"}, {"a\nb": "v"}, {"a,b": "v"}, {"a;b": "v"},
            {"a": "x\ty"}, {"a": "x\ny"}, {"a": "x,y"}]


@pytest.mark.parametrize("tags", BAD_TAGS, ids=repr)
def test_tags_with_invalid_characters(kinesis, stream, tags):
    kin.expect_error("InvalidArgumentException", kinesis.add_tags_to_stream, StreamName=stream,
                     Tags=tags, message=BAD_TAG_CHARS)
    assert kinesis.list_tags_for_stream(StreamName=stream)["Tags"] == []


@pytest.mark.kinesalite_diverges(reason="no TagResource")
@pytest.mark.parametrize("tags", BAD_TAGS[:3], ids=repr)
def test_tag_resource_with_invalid_characters(kinesis, stream, tags):
    kin.expect_error("InvalidArgumentException", kinesis.tag_resource,
                     ResourceARN=kin.stream_arn(stream), Tags=tags, message=BAD_TAG_CHARS)


@pytest.mark.kinesalite_diverges(reason="no Tags on CreateStream")
def test_create_stream_with_invalid_tag_characters(kinesis, stream_name):
    kin.expect_error("InvalidArgumentException", kinesis.create_stream, StreamName=stream_name,
                     ShardCount=1, Tags={"team\tname": "x"}, message=BAD_TAG_CHARS)
    kin.expect_error("ResourceNotFoundException", kinesis.describe_stream_summary,
                     StreamName=stream_name, message=kin.not_found_message(stream_name))


def test_tags_with_unicode_letters_and_spaces(kinesis, stream):
    # Space separators of any kind count as white space (no-break, ideographic).
    tags = {"ü0 _.:/=+-@%": "v", "b": "ü0 _./=+-@%", "nb\u00a0sp": "x\u3000y", "c": ""}
    kinesis.add_tags_to_stream(StreamName=stream, Tags=tags)
    got = {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(StreamName=stream)["Tags"]}
    assert got == tags


# ---------------------------------------------------------------- DeleteStream while CREATING

@pytest.fixture(scope="module")
def slow_server():
    """A server whose streams stay CREATING (and DELETING) until its test clock moves."""
    srv = kin.RunnelProcess(transition_ms=600_000).start()
    try:
        yield srv
    finally:
        srv.cleanup()


def _status(client, name: str) -> str:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]


@pytest.mark.runnel_only
@pytest.mark.kinesalite_diverges(reason="kinesalite refuses DeleteStream unless ACTIVE")
def test_delete_stream_while_creating(slow_server):
    k = kin.make_client(slow_server.endpoint)
    k.create_stream(StreamName="young", ShardCount=1)
    assert _status(k, "young") == "CREATING"
    k.delete_stream(StreamName="young")
    assert _status(k, "young") == "DELETING"
    r = requests_post(slow_server.endpoint + "/_runnel/test/clock/advance", {"ms": 600_001})
    assert r == 200
    kin.expect_error("ResourceNotFoundException", k.describe_stream_summary, StreamName="young",
                     message=kin.not_found_message("young"))
    # The name is free again.
    k.create_stream(StreamName="young", ShardCount=1)
    assert _status(k, "young") == "CREATING"


def requests_post(url: str, payload: dict) -> int:
    import requests
    return requests.post(url, json=payload, timeout=30).status_code


# ---------------------------------------------------------------- error bodies

def test_error_body_members(endpoint, stream_name):
    """`__type` is the bare name; service errors say `message`, the front
    door's SerializationException says `Message` (both as AWS sends them)."""
    status, body = kin.raw_call(endpoint, "DescribeStreamSummary", {"StreamName": stream_name})
    assert (status, body) == (400, {"__type": "ResourceNotFoundException",
                                    "message": kin.not_found_message(stream_name)})
    status, _h, raw = kin.raw_request(endpoint, "PutRecord", json.dumps(
        {"StreamName": stream_name, "PartitionKey": "k", "Data": "Foo"}).encode())
    assert status == 400
    assert json.loads(raw) == {
        "__type": "SerializationException",
        "Message": "'Foo' can not be converted to a Blob: Base64 encoded length is expected a "
                   "multiple of 4 bytes but found: 3"}


def test_boto3_reads_the_front_door_message(kinesis_nv, stream_name):
    kin.expect_error("SerializationException", kinesis_nv.create_stream, StreamName=stream_name,
                     ShardCount="many", contains=("ShardCount",))


# ---------------------------------------------------------------- malformed base64

BASE64_CASES = [
    ("====", "Invalid Base64 padding"),
    ("AAA", "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
    ("aG!s", "Invalid Base64 character: '!'"),
    ("AB==", "Invalid last non-pad Base64 character dectected"),
]


@pytest.mark.parametrize("data,why", BASE64_CASES)
def test_put_record_with_malformed_base64(endpoint, stream, data, why):
    status, _h, raw = kin.raw_request(endpoint, "PutRecord", json.dumps(
        {"StreamName": stream, "PartitionKey": "k", "Data": data}).encode())
    assert (status, json.loads(raw)) == (400, {
        "__type": "SerializationException", "Message": f"'{data}' can not be converted to a Blob: {why}"})


@pytest.mark.parametrize("data,why", BASE64_CASES[:2])
def test_put_records_with_malformed_base64(endpoint, stream, data, why):
    records = [{"PartitionKey": "k", "Data": "AA=="}, {"PartitionKey": "k", "Data": data}]
    status, _h, raw = kin.raw_request(endpoint, "PutRecords", json.dumps(
        {"StreamName": stream, "Records": records}).encode())
    assert (status, json.loads(raw)) == (400, {
        "__type": "SerializationException", "Message": f"'{data}' can not be converted to a Blob: {why}"})
    # Nothing of the request was written.
    assert kin.read_shard(kin.make_client(endpoint), stream, "shardId-000000000000") == []


def test_well_formed_base64_still_taken(endpoint, stream):
    for data in ("", "AA==", "AAA=", "AAAA"):
        status, body = kin.raw_call(endpoint, "PutRecord", {"StreamName": stream, "PartitionKey": "k",
                                                            "Data": data})
        assert status == 200, body


# ---------------------------------------------------------------- CBOR errors

def test_truncated_cbor_gets_a_clean_message(endpoint, stream):
    whole = cbor2.dumps({"StreamName": stream, "PartitionKey": "k", "Data": b"abc"})
    status, headers, raw = kin.raw_request(endpoint, "PutRecord", whole[:-2], content_type=kin.CBOR_CT)
    assert status == 400 and headers["content-type"].startswith(kin.CBOR_CT)
    assert cbor2.loads(raw) == {
        "__type": "SerializationException",
        "Message": "Malformed CBOR body: the body ends before the CBOR value is complete."}


def test_cbor_wrong_type_message_has_no_debug_text(endpoint, stream_name):
    status, _h, raw = kin.raw_request(endpoint, "CreateStream", cbor2.dumps(
        {"StreamName": stream_name, "ShardCount": "abc"}), content_type=kin.CBOR_CT)
    body = cbor2.loads(raw)
    assert status == 400 and body["__type"] == "SerializationException"
    assert body["Message"].startswith('invalid type: string "abc"'), body
    assert "Custom(" not in body["Message"] and "Error {" not in body["Message"]


# ---------------------------------------------------------------- Connection: close

def _exchange(endpoint: str, request: bytes) -> tuple[bytes, bool]:
    """Sends raw HTTP/1.1; returns (response head, whether the server closed)."""
    u = urlparse(endpoint)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    try:
        s.sendall(request)
        s.settimeout(3)
        got = b""
        closed = False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                got += chunk
        except socket.timeout:
            pass
        return got.split(b"\r\n\r\n", 1)[0].lower(), closed
    finally:
        s.close()


BIG_BODY = b"x" * 200_000


@pytest.mark.runnel_only
@pytest.mark.parametrize("path,status", [("/ready", 200), ("/metrics", 200), ("/_runnel/nope", 404),
                                         ("/console/no-such-file.js", 404)])
def test_answer_that_leaves_a_body_unread_says_connection_close(endpoint, path, status):
    head, closed = _exchange(endpoint, f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: "
                             f"{len(BIG_BODY)}\r\n\r\n".encode() + BIG_BODY)
    assert head.startswith(f"http/1.1 {status}".encode()), head
    assert b"\r\nconnection: close" in head, head
    assert closed


@pytest.mark.runnel_only
def test_answer_without_a_body_keeps_the_connection(endpoint):
    head, closed = _exchange(endpoint, b"GET /_runnel/nope HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"http/1.1 404"), head
    assert b"connection: close" not in head and not closed


# ---------------------------------------------------------------- every model constraint, from the model

SERVED = ("PutRecords PutRecord GetRecords GetShardIterator CreateStream DeleteStream DescribeStream "
          "DescribeStreamSummary ListStreams ListShards IncreaseStreamRetentionPeriod "
          "DecreaseStreamRetentionPeriod AddTagsToStream RemoveTagsFromStream ListTagsForStream "
          "TagResource UntagResource ListTagsForResource SplitShard MergeShards UpdateShardCount "
          "UpdateStreamMode UpdateStreamWarmThroughput UpdateMaxRecordSize UpdateAccountSettings "
          "RegisterStreamConsumer DescribeStreamConsumer ListStreamConsumers DeregisterStreamConsumer "
          "EnableEnhancedMonitoring DisableEnhancedMonitoring StartStreamEncryption StopStreamEncryption "
          "PutResourcePolicy GetResourcePolicy DeleteResourcePolicy").split()
NO_STREAM = "e2e-model-no-such-stream"
NO_ARN = kin.stream_arn(NO_STREAM)
# Members that must hold a particular well-formed value for the request to get as far
# as looking the stream up.
GOOD = {"StreamName": NO_STREAM, "StreamARN": NO_ARN, "ResourceARN": NO_ARN,
        "ConsumerARN": NO_ARN + "/consumer/c:1700000000", "ShardId": "shardId-000000000000",
        "ShardToSplit": "shardId-000000000000", "ShardToMerge": "shardId-000000000000",
        "AdjacentShardToMerge": "shardId-000000000001", "NewStartingHashKey": "12345",
        "ShardIteratorType": "LATEST", "Policy": "{}", "EncryptionType": "KMS", "KeyId": "alias/k",
        "RetentionPeriodHours": 48, "MaxRecordSizeInKiB": 2048, "ShardCount": 1,
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"}, "ShardLevelMetrics": ["IncomingBytes"],
        "Records": [{"Data": "AA==", "PartitionKey": "p"}], "Tags": {"a": "b"}, "TagKeys": ["a"],
        "TargetShardCount": 2, "ScalingType": "UNIFORM_SCALING", "ConsumerName": "c",
        "WarmThroughputMiBps": 10, "ShardIterator": "x", "Data": "AA==", "PartitionKey": "p",
        "MinimumThroughputBillingCommitment": {"Status": "ENABLED"}}
NOT_A_STREAM_NAME = {"UpdateStreamMode", "UpdateMaxRecordSize", "RegisterStreamConsumer",
                     "ListStreamConsumers", "DescribeStreamConsumer", "DeregisterStreamConsumer",
                     "UpdateAccountSettings", "ListStreams", "GetRecords", "TagResource", "UntagResource",
                     "ListTagsForResource", "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy"}


def _bad_values(shape):
    """(kind, value) pairs that break one constraint of `shape`."""
    meta = shape.metadata
    if shape.type_name == "string":
        if "max" in meta:
            yield "too long", "x" * (meta["max"] + 1)
        if meta.get("min", 0) >= 1:
            yield "empty", ""
        if "pattern" in meta:
            yield "pattern", "a b"
        if shape.enum:
            yield "enum", "NOPE"
    elif shape.type_name == "integer":
        if "min" in meta:
            yield "too small", meta["min"] - 1
        if "max" in meta:
            yield "too big", meta["max"] + 1
    elif shape.type_name == "map":
        yield "long key", {"k" * 129: "v"}
    elif shape.type_name == "list" and meta.get("min", 0) >= 1:
        yield "empty list", []


def _model_cases():
    import botocore.session
    model = botocore.session.get_session().get_service_model("kinesis")
    for op in SERVED:
        shape = model.operation_model(op).input_shape
        if shape is None:
            continue
        base = {k: GOOD[k] for k in shape.members
                if k in GOOD and (k in shape.required_members or k == "StreamName")}
        if op in NOT_A_STREAM_NAME:
            base.pop("StreamName", None)
        if op in ("UpdateStreamMode", "UpdateMaxRecordSize", "RegisterStreamConsumer",
                  "ListStreamConsumers"):
            base["StreamARN"] = NO_ARN
        if op in ("DescribeStreamConsumer", "DeregisterStreamConsumer"):
            base = {"ConsumerARN": GOOD["ConsumerARN"]}
        if op == "PutRecord":
            # Optional in the model for AUTO-distribution streams; runnel's are all
            # USER_PARTITION_KEY, which need one.
            base["PartitionKey"] = GOOD["PartitionKey"]
        for member, member_shape in shape.members.items():
            if member in ("StreamName", "StreamARN", "StreamId"):
                continue
            for kind, value in _bad_values(member_shape):
                yield pytest.param(op, {**base, member: value}, member, id=f"{op}.{member}-{kind}")


@pytest.mark.parametrize("op,payload,member", list(_model_cases()))
def test_each_model_constraint_is_checked_before_the_stream(endpoint, op, payload, member):
    status, body = kin.raw_call(endpoint, op, payload)
    assert status == 400, body
    assert kin.error_type(body) == "ValidationException", body
    # A value may break two constraints at once (too long and off the pattern).
    field = member[0].lower() + member[1:]
    violations = body["message"].split(" detected: ", 1)[1].split("; ")
    assert body["message"].startswith(f"{len(violations)} validation error"), body
    assert all(f" at '{field}" in v for v in violations), body
