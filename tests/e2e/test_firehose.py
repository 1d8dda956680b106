"""Amazon Data Firehose (Firehose_20150804) against the real binary: the API's
shapes and errors with boto3's `firehose` client and the aws CLI, delivery of
Direct PUT and stream-sourced records into the local-directory bucket
(<data-dir>/buckets/B/), and exactly-once delivery across kill -9."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

import kin

pytestmark = pytest.mark.runnel_only

ROLE = f"arn:aws:iam::{kin.ACCOUNT}:role/firehose"
KEY_RE = re.compile(
    r"^(?P<prefix>.*?)(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
    r"(?P<name>.+)-(?P<version>\d+)-(?P=y)-(?P=m)-(?P=d)-(?P=h)-\d{2}-\d{2}-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?P<ext>\.gz)?$")
DELIVERY_TIMEOUT_S = 60.0


def firehose_client(endpoint: str, validate: bool = True):
    return boto3.client(
        "firehose", endpoint_url=endpoint, region_name=kin.REGION,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, parameter_validation=validate,
                      read_timeout=60))


@pytest.fixture(scope="module")
def fh(endpoint):
    return firehose_client(endpoint)


@pytest.fixture(scope="module")
def fh_nv(endpoint):
    return firehose_client(endpoint, validate=False)


@pytest.fixture
def name(request) -> str:
    return "fh-" + re.sub(r"[^a-zA-Z0-9_.-]", "-", request.node.name)[:50]


def s3_config(bucket: str, **extra) -> dict:
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", **extra}


def advance_clock(endpoint: str, ms: int) -> None:
    r = requests.post(endpoint + "/_runnel/test/clock/advance", json={"ms": ms}, timeout=30)
    assert r.status_code == 200, r.text


def not_found(name: str) -> str:
    return f"Firehose {name} under account {kin.ACCOUNT} not found."


def wait_active(fh, name: str) -> dict:
    deadline = time.monotonic() + kin.STATUS_TIMEOUT_S
    while True:
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        if d["DeliveryStreamStatus"] == "ACTIVE":
            return d
        assert time.monotonic() < deadline, f"{name} never became ACTIVE: {d}"
        time.sleep(kin.POLL_INTERVAL_S)


def objects(bucket_dir: Path) -> dict[str, bytes]:
    """Every object of a local bucket by key (temporary dot-files excluded)."""
    out = {}
    if not bucket_dir.is_dir():
        return out
    for p in sorted(bucket_dir.rglob("*")):
        rel = p.relative_to(bucket_dir).as_posix()
        if p.is_file() and not any(part.startswith(".") for part in rel.split("/")):
            out[rel] = p.read_bytes()
    return out


def wait_objects(bucket_dir: Path, want_bytes: int, decode=lambda b: b) -> dict[str, bytes]:
    """Polls until the objects' decoded bytes add up to `want_bytes`."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while True:
        got = {k: decode(v) for k, v in objects(bucket_dir).items()}
        if sum(len(v) for v in got.values()) >= want_bytes:
            return got
        assert time.monotonic() < deadline, f"delivered {got.keys()} so far"
        time.sleep(0.05)


def records(n: int, tag: str) -> list[bytes]:
    return [json.dumps({"tag": tag, "i": i}).encode() + b"\n" for i in range(n)]


# ------------------------------------------------------------------ API shapes

def test_create_describe_list_delete(fh, name):
    arn = fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=s3_config("shapes", Prefix="raw/",
                                                     CompressionFormat="GZIP"),
    )["DeliveryStreamARN"]
    try:
        assert arn == f"arn:aws:firehose:{kin.REGION}:{kin.ACCOUNT}:deliverystream/{name}"
        d = wait_active(fh, name)
        assert d["DeliveryStreamName"] == name
        assert d["DeliveryStreamARN"] == arn
        assert d["DeliveryStreamType"] == "DirectPut"
        assert d["VersionId"] == "1"
        assert d["HasMoreDestinations"] is False
        assert d["DeliveryStreamEncryptionConfiguration"] == {"Status": "DISABLED"}
        assert "FailureDescription" not in d
        [dest] = d["Destinations"]
        assert dest["DestinationId"] == "destinationId-000000000001"
        ext = dest["ExtendedS3DestinationDescription"]
        assert ext["BucketARN"] == "arn:aws:s3:::shapes"
        assert ext["RoleARN"] == ROLE
        assert ext["Prefix"] == "raw/"
        assert ext["CompressionFormat"] == "GZIP"
        assert ext["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 300}
        assert ext["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
        assert ext["S3BackupMode"] == "Disabled"
        assert dest["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::shapes"
        page = fh.describe_delivery_stream(
            DeliveryStreamName=name, ExclusiveStartDestinationId="destinationId-000000000001")
        assert page["DeliveryStreamDescription"]["Destinations"] == []
        assert name in fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)
    kin.expect_error("ResourceNotFoundException", fh.describe_delivery_stream,
                     DeliveryStreamName=name, message=not_found(name))
    assert name not in fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]


def test_errors(fh, fh_nv, name, kinesis):
    kin.expect_error("ResourceNotFoundException", fh.describe_delivery_stream,
                     DeliveryStreamName=name, message=not_found(name))
    kin.expect_error("ResourceNotFoundException", fh.delete_delivery_stream,
                     DeliveryStreamName=name, message=not_found(name))
    kin.expect_error("ResourceNotFoundException", fh.put_record,
                     DeliveryStreamName=name, Record={"Data": b"x"}, message=not_found(name))
    kin.expect_error(
        "ValidationException", fh_nv.describe_delivery_stream, DeliveryStreamName="bad name",
        message="1 validation error detected: Value 'bad name' at 'deliveryStreamName' failed "
                "to satisfy constraint: Member must satisfy regular expression pattern: "
                "[a-zA-Z0-9_.-]+")
    kin.expect_error(
        "InvalidArgumentException", fh.create_delivery_stream, DeliveryStreamName=name,
        HttpEndpointDestinationConfiguration={
            "EndpointConfiguration": {"Url": "https://example.com"},
            "S3Configuration": s3_config("b-http")},
        message="HttpEndpointDestinationConfiguration is not supported by runnel yet; supported "
                "destinations are ExtendedS3DestinationConfiguration and S3DestinationConfiguration.")
    kin.expect_error(
        "InvalidArgumentException", fh.create_delivery_stream, DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_config("b-zip", CompressionFormat="ZIP"),
        message="CompressionFormat ZIP is not supported by runnel yet.")
    assert name not in fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]

    fh.create_delivery_stream(DeliveryStreamName=name,
                              S3DestinationConfiguration=s3_config("errors"))
    try:
        kin.expect_error(
            "ResourceInUseException", fh.create_delivery_stream, DeliveryStreamName=name,
            S3DestinationConfiguration=s3_config("errors"),
            message=f"Firehose {name} under account {kin.ACCOUNT} already exists.")
        wait_active(fh, name)
        kin.expect_error(
            "ValidationException", fh_nv.put_record_batch, DeliveryStreamName=name,
            Records=[{"Data": b"x"}] * 501,
            contains=("at 'records' failed to satisfy constraint: Member must have length less "
                      "than or equal to 500",))
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)

    source = name[:40] + "-src"
    kinesis.create_stream(StreamName=source, ShardCount=1)
    kin.wait_status(kinesis, source)
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": kin.stream_arn(source),
                                          "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=s3_config("errors"))
    try:
        wait_active(fh, name)
        for call, kw in [(fh.put_record, {"Record": {"Data": b"x"}}),
                         (fh.put_record_batch, {"Records": [{"Data": b"x"}]})]:
            kin.expect_error(
                "InvalidArgumentException", call, DeliveryStreamName=name, **kw,
                message="This operation is not permitted on KinesisStreamAsSource delivery "
                        "stream type.")
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)
        kinesis.delete_stream(StreamName=source)


def test_list_filter_and_paging(fh, name, kinesis):
    names = [f"{name[:55]}-{i}" for i in range(3)]
    for n in names:
        fh.create_delivery_stream(DeliveryStreamName=n, S3DestinationConfiguration=s3_config("list"))
    try:
        direct = fh.list_delivery_streams(DeliveryStreamType="DirectPut", Limit=10000)
        assert set(names) <= set(direct["DeliveryStreamNames"])
        assert direct["DeliveryStreamNames"] == sorted(direct["DeliveryStreamNames"])
        from_kinesis = fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")
        assert not set(names) & set(from_kinesis["DeliveryStreamNames"])
        page = fh.list_delivery_streams(Limit=1, ExclusiveStartDeliveryStreamName=names[0])
        assert page["DeliveryStreamNames"] == [names[1]]
        assert page["HasMoreDeliveryStreams"] is True
        last = fh.list_delivery_streams(Limit=1, ExclusiveStartDeliveryStreamName=names[1])
        assert last["DeliveryStreamNames"] == [names[2]]
        # The records of a Direct PUT stream are kept in a stream users never see.
        assert not [s for s in kinesis.list_streams()["StreamNames"] if "firehose" in s]
    finally:
        for n in names:
            fh.delete_delivery_stream(DeliveryStreamName=n)


def test_tags(fh, name):
    fh.create_delivery_stream(DeliveryStreamName=name, S3DestinationConfiguration=s3_config("tags"),
                              Tags=[{"Key": "team", "Value": "data"}])
    try:
        fh.tag_delivery_stream(DeliveryStreamName=name,
                               Tags=[{"Key": "env", "Value": "e2e"}, {"Key": "team", "Value": "ops"}])
        got = fh.list_tags_for_delivery_stream(DeliveryStreamName=name)
        assert got["Tags"] == [{"Key": "env", "Value": "e2e"}, {"Key": "team", "Value": "ops"}]
        assert got["HasMoreTags"] is False
        page = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, Limit=1)
        assert page["Tags"] == [{"Key": "env", "Value": "e2e"}] and page["HasMoreTags"] is True
        page = fh.list_tags_for_delivery_stream(DeliveryStreamName=name, ExclusiveStartTagKey="env")
        assert page["Tags"] == [{"Key": "team", "Value": "ops"}]
        fh.untag_delivery_stream(DeliveryStreamName=name, TagKeys=["team", "absent"])
        assert fh.list_tags_for_delivery_stream(DeliveryStreamName=name)["Tags"] == [
            {"Key": "env", "Value": "e2e"}]
        kin.expect_error("LimitExceededException", fh.tag_delivery_stream, DeliveryStreamName=name,
                         Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
        kin.expect_error("ResourceNotFoundException", fh.list_tags_for_delivery_stream,
                         DeliveryStreamName=name + "x", message=not_found(name + "x"))
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)


def test_update_destination(fh, name, server):
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_config("upd", BufferingHints={"IntervalInSeconds": 0}))
    try:
        wait_active(fh, name)
        kin.expect_error(
            "ConcurrentModificationException", fh.update_destination, DeliveryStreamName=name,
            CurrentDeliveryStreamVersionId="7", DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"Prefix": "new/"},
            message=f"Cannot update Firehose {name}: version 7 was given, but the current "
                    "version is 1.")
        fh.update_destination(
            DeliveryStreamName=name, CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"Prefix": "new/", "CompressionFormat": "GZIP"})
        d = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        assert d["VersionId"] == "2"
        assert "LastUpdateTimestamp" in d
        ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert (ext["Prefix"], ext["CompressionFormat"]) == ("new/", "GZIP")
        assert ext["BufferingHints"]["IntervalInSeconds"] == 0
        # Delivery uses the new configuration and the new version in the key.
        data = records(5, "upd")
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in data])
        got = wait_objects(server.data_dir / "buckets" / "upd", len(b"".join(data)), gzip.decompress)
        [(key, body)] = got.items()
        m = KEY_RE.match(key)
        assert m and m["prefix"] == "new/" and m["version"] == "2" and m["ext"] == ".gz", key
        assert body == b"".join(data)
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)


# ------------------------------------------------------------------ delivery

@pytest.mark.parametrize("compression", ["UNCOMPRESSED", "GZIP"])
def test_direct_put_delivers_objects(fh, name, server, compression):
    bucket = f"direct-{compression.lower()}"
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_config(
            bucket, CompressionFormat=compression,
            BufferingHints={"IntervalInSeconds": 0, "SizeInMBs": 1}))
    try:
        wait_active(fh, name)
        data = records(300, name)
        out = fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in data])
        assert out["FailedPutCount"] == 0
        assert len(out["RequestResponses"]) == 300
        ids = [r["RecordId"] for r in out["RequestResponses"]]
        assert len(set(ids)) == 300
        single = fh.put_record(DeliveryStreamName=name, Record={"Data": b"last\n"})
        assert single["RecordId"] and single["RecordId"] not in ids
        want = b"".join(data) + b"last\n"
        decode = gzip.decompress if compression == "GZIP" else (lambda b: b)
        got = wait_objects(server.data_dir / "buckets" / bucket, len(want), decode)
        for key in got:
            m = KEY_RE.match(key)
            assert m, key
            assert m["prefix"] == "" and m["name"] == name and m["version"] == "1"
            assert m["ext"] == (".gz" if compression == "GZIP" else None)
        # Objects in key order hold the records in order, each exactly once.
        assert b"".join(got[k] for k in sorted(got)) == want
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)


def test_buffering_by_size_then_interval(fh, name, server, clock):
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        ExtendedS3DestinationConfiguration=s3_config(
            "by-size", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900}))
    try:
        wait_active(fh, name)
        mib = 1024 * 1024
        data = [bytes([65 + i]) * (100 * 1024) for i in range(15)]  # 1.5 MiB
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in data[:12]])
        bucket = server.data_dir / "buckets" / "by-size"
        got = wait_objects(bucket, mib)  # size reached long before 900 s
        [(_, first)] = got.items()
        assert len(first) >= mib and first == b"".join(data[:len(first) // (100 * 1024)])
        fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in data[12:]])
        time.sleep(0.5)
        assert sum(len(v) for v in objects(bucket).values()) == len(first), \
            "a buffer under 1 MiB was delivered before its interval"
        clock.advance(901_000)
        got = wait_objects(bucket, len(b"".join(data)))
        assert len(got) == 2
        assert b"".join(got[k] for k in sorted(got, key=lambda k: got[k] != first)) == b"".join(data)
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)


def test_definitions_survive_a_restart():
    srv = kin.RunnelProcess().start()
    try:
        fh = firehose_client(srv.endpoint)
        fh.create_delivery_stream(DeliveryStreamName="keep",
                                  S3DestinationConfiguration=s3_config("keep"),
                                  Tags=[{"Key": "k", "Value": "v"}])
        wait_active(fh, "keep")
        fh.update_destination(DeliveryStreamName="keep", CurrentDeliveryStreamVersionId="1",
                              DestinationId="destinationId-000000000001",
                              S3DestinationUpdate={"Prefix": "p/"})
        fh.create_delivery_stream(DeliveryStreamName="gone",
                                  S3DestinationConfiguration=s3_config("keep"))
        fh.delete_delivery_stream(DeliveryStreamName="gone")
        before = fh.describe_delivery_stream(DeliveryStreamName="keep")["DeliveryStreamDescription"]
        srv.stop()  # graceful: the supervisor stops the delivery tasks
        srv.start()
        fh = firehose_client(srv.endpoint)
        after = fh.describe_delivery_stream(DeliveryStreamName="keep")["DeliveryStreamDescription"]
        assert after == before
        assert after["VersionId"] == "2"
        assert fh.list_delivery_streams()["DeliveryStreamNames"] == ["keep"]
        assert fh.list_tags_for_delivery_stream(DeliveryStreamName="keep")["Tags"] == [
            {"Key": "k", "Value": "v"}]
    finally:
        srv.cleanup()


def test_kinesis_stream_as_source(fh, name, server, kinesis):
    source = name[:40] + "-src"
    kinesis.create_stream(StreamName=source, ShardCount=2)
    kin.wait_status(kinesis, source)
    fh.create_delivery_stream(
        DeliveryStreamName=name, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": kin.stream_arn(source),
                                          "RoleARN": ROLE},
        S3DestinationConfiguration=s3_config("from-kinesis", Prefix="k/",
                                             BufferingHints={"IntervalInSeconds": 1}))
    try:
        d = wait_active(fh, name)
        src = d["Source"]["KinesisStreamSourceDescription"]
        assert src["KinesisStreamARN"] == kin.stream_arn(source) and src["RoleARN"] == ROLE
        assert "DeliveryStartTimestamp" in src
        data = records(50, name)
        kin.put_all(kinesis, source, [{"Data": r, "PartitionKey": f"p{i}"} for i, r in enumerate(data)])
        got = wait_objects(server.data_dir / "buckets" / "from-kinesis", len(b"".join(data)))
        assert all(KEY_RE.match(k)["prefix"] == "k/" for k in got)
        # Order holds per shard only: compare as a multiset of lines.
        lines = sorted(b"".join(got.values()).splitlines(keepends=True))
        assert lines == sorted(data)
    finally:
        fh.delete_delivery_stream(DeliveryStreamName=name)
        kinesis.delete_stream(StreamName=source)


def test_kill_9_before_delivery_delivers_exactly_once():
    srv = kin.RunnelProcess().start()
    try:
        fh = firehose_client(srv.endpoint)
        fh.create_delivery_stream(
            DeliveryStreamName="crash",
            ExtendedS3DestinationConfiguration=s3_config(
                "crash", BufferingHints={"IntervalInSeconds": 60}))
        wait_active(fh, "crash")
        data = records(400, "crash")
        for chunk in (data[:200], data[200:]):
            out = fh.put_record_batch(DeliveryStreamName="crash",
                                      Records=[{"Data": r} for r in chunk])
            assert out["FailedPutCount"] == 0
        bucket = srv.data_dir / "buckets" / "crash"
        time.sleep(0.5)
        assert objects(bucket) == {}, "delivered before its 60 s interval"
        srv.kill()  # SIGKILL: the buffer existed only in memory
        srv.start()
        fh = firehose_client(srv.endpoint)
        assert fh.describe_delivery_stream(DeliveryStreamName="crash")[
            "DeliveryStreamDescription"]["VersionId"] == "1"
        advance_clock(srv.endpoint, 61_000)  # the restarted buffer's interval ends
        got = wait_objects(bucket, len(b"".join(data)))
        lines = b"".join(got[k] for k in sorted(got)).splitlines(keepends=True)
        assert lines == data  # every record once, in order
        # And nothing more arrives later.
        advance_clock(srv.endpoint, 61_000)
        time.sleep(0.5)
        assert objects(bucket) == got
    finally:
        srv.cleanup()


def test_aws_cli(endpoint, tmp_path, name):
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip(f"aws CLI not installed at {aws}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION=kin.REGION,
               AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "creds"), AWS_PAGER="",
               AWS_MAX_ATTEMPTS="1")

    def run(*args):
        p = subprocess.run([str(aws), "--endpoint-url", endpoint, "--output", "json", "firehose",
                            *args], env=env, capture_output=True, text=True, timeout=90)
        assert p.returncode == 0, f"aws firehose {' '.join(args)}: {p.stderr}"
        return json.loads(p.stdout) if p.stdout.strip() else {}

    run("create-delivery-stream", "--delivery-stream-name", name,
        "--s3-destination-configuration", f"RoleARN={ROLE},BucketARN=arn:aws:s3:::cli")
    try:
        assert name in run("list-delivery-streams", "--limit", "10000")["DeliveryStreamNames"]
        d = run("describe-delivery-stream", "--delivery-stream-name", name)
        assert d["DeliveryStreamDescription"]["VersionId"] == "1"
    finally:
        run("delete-delivery-stream", "--delivery-stream-name", name)
