"""The S3 server the Firehose delivery tests write to (s3s-fs from
scripts/s3-server.sh) is a real one: it checks SigV4 signatures against the
fixed credentials, keeps objects, and does multipart uploads with S3's rules
(part size floor, composite ETag) — what Firehose's S3 destination needs."""

from __future__ import annotations

import hashlib
import os
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def s3_client(s3_server, secret_key: str | None = None):
    return boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=secret_key or s3_server.secret_key,
        region_name=s3_server.region,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                      retries={"max_attempts": 1}),
    )


@pytest.fixture
def s3(s3_server):
    return s3_client(s3_server)


@pytest.fixture
def bucket(s3):
    name = f"e2e-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_put_get_list_delete(s3, bucket):
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    body = b"record-1\nrecord-2\n"
    key = "2026/12/03/14/delivery-stream-1-2026-12-03-14-00-00-abc"
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/octet-stream")
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    s3.put_object(Bucket=bucket, Key="other/x", Body=b"x")

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == put["ETag"]

    listed = s3.list_objects_v2(Bucket=bucket, Prefix="2026/")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [(key, len(body))]
    assert listed["KeyCount"] == 1

    s3.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key=key)
    assert error_code(e) == "NoSuchKey"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])] == ["other/x"]


def test_multipart_upload_of_6_mib_in_two_parts(s3, bucket):
    part1 = os.urandom(5 * MIB)
    part2 = os.urandom(1 * MIB)
    key = "multipart/object"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=part2)["ETag"]
    assert e1 == f'"{hashlib.md5(part1).hexdigest()}"'
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
    # s3s-fs lists parts in directory order, AWS by part number (docs/firehose-s3.md).
    assert sorted((p["PartNumber"], p["Size"]) for p in listed) == [(1, 5 * MIB), (2, 1 * MIB)]

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    composite = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest()
    assert done["ETag"] == f'"{composite}-2"'

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["ContentLength"] == 6 * MIB
    assert got["Body"].read() == part1 + part2
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == 6 * MIB


def test_multipart_part_below_5_mib_is_rejected_unless_last(s3, bucket):
    key = "multipart/small"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"a" * MIB)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=b"b")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert error_code(e) == "EntityTooSmall"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_aborted_multipart_upload_leaves_no_object(s3, bucket):
    key = "multipart/aborted"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"a" * MIB)
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


def test_wrong_secret_is_refused(s3_server, bucket):
    bad = s3_client(s3_server, secret_key="not-the-secret")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert error_code(e) == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_missing_bucket(s3):
    # s3s-fs answers NoSuchBucket on HeadBucket and listings, but NoSuchKey on
    # GetObject and success on a PutObject to a missing bucket
    # (docs/firehose-s3.md), so a sink's health check should use HeadBucket.
    name = f"e2e-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert error_code(e) == "NoSuchBucket"
