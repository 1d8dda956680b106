"""Authentication (SigV4) and authorization (IAM-style policies) with
`--auth enforced`, through boto3, the aws CLI and hand-signed requests."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import kin

pytestmark = pytest.mark.runnel_only


def run_auth(pfile, *args) -> str:
    out = subprocess.run([str(kin.runnel_bin()), "auth", "--file", str(pfile), *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def add_principal(tmp_path, pfile, name, policy) -> tuple[str, str]:
    doc = tmp_path / f"{name}.json"
    doc.write_text(json.dumps(policy))
    out = run_auth(pfile, "add", name, "--policy", str(doc))
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("("))
    return fields["access key id"].strip(), fields["secret access key"].strip()


def client(endpoint, key, secret, region="us-east-1", service="kinesis"):
    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("auth")
    data = tmp / "data"
    data.mkdir()
    # The principals file lives in the data dir, next to the master key that
    # encrypts its secrets (the server's default place for both).
    pfile = data / "principals.json"
    admin = add_principal(tmp, pfile, "admin", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kinesis:*", "cloudwatch:*"], "Resource": "*"}]})
    reader = add_principal(tmp, pfile, "reader", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards"],
         "Resource": kin.stream_arn("s1")}]})
    denied = add_principal(tmp, pfile, "no-deletes", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "kinesis:Delete*", "Resource": "*"}]})
    assert oct(os.stat(pfile).st_mode & 0o777) == "0o600"
    stored = pfile.read_text()
    assert admin[1] not in stored and reader[1] not in stored and "secret_enc" in stored
    assert "admin" in run_auth(pfile, "list") and admin[1] not in run_auth(pfile, "list")
    srv = kin.RunnelProcess(data_dir=data, extra_args=["--auth", "enforced", "--principals-file", str(pfile)]).start()
    a = client(srv.endpoint, *admin)
    for s in ("s1", "s2"):
        a.create_stream(StreamName=s, ShardCount=1)
        kin.wait_status(a, s)
        a.put_record(StreamName=s, Data=b"secret-data", PartitionKey="k")
    yield srv, admin, reader, denied
    srv.cleanup()


def test_right_key_works_and_policies_scope_it(secured):
    srv, admin, reader, denied = secured
    r = client(srv.endpoint, *reader)
    it = r.get_shard_iterator(StreamName="s1", ShardId="shardId-000000000000",
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [x["Data"] for x in r.get_records(ShardIterator=it)["Records"]] == [b"secret-data"]
    with pytest.raises(ClientError) as e:
        r.put_record(StreamName="s1", Data=b"x", PartitionKey="k")
    assert code(e) == "AccessDeniedException"
    msg = e.value.response["Error"]["Message"]
    assert "user/reader is not authorized to perform: kinesis:PutRecord on resource: " + kin.stream_arn("s1") in msg
    with pytest.raises(ClientError) as e:
        r.get_shard_iterator(StreamName="s2", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        r.list_streams()
    assert code(e) == "AccessDeniedException"
    d = client(srv.endpoint, *denied)
    d.list_streams()
    with pytest.raises(ClientError) as e:
        d.delete_stream(StreamName="s2")
    assert code(e) == "AccessDeniedException" and "explicit deny" in e.value.response["Error"]["Message"]


def test_bad_credentials_get_aws_error_types(secured):
    srv, admin, _, _ = secured
    cases = [
        (client(srv.endpoint, admin[0], "wrong-secret"), "InvalidSignatureException"),
        (client(srv.endpoint, "AKIAUNKNOWNKEY000000", admin[1]), "UnrecognizedClientException"),
        (client(srv.endpoint, *admin, region="eu-west-1"), "InvalidSignatureException"),
    ]
    for c, want in cases:
        with pytest.raises(ClientError) as e:
            c.list_streams()
        assert code(e) == want, e.value.response


def signed(endpoint, key, secret, body: bytes, when: datetime.datetime | None = None):
    req = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"})
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "kinesis", "us-east-1")
    if when is not None:
        class Fixed(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return when.replace(tzinfo=None)

            @classmethod
            def now(cls, tz=None):
                return when if tz else when.replace(tzinfo=None)
        orig = botocore.auth.datetime.datetime
        botocore.auth.datetime.datetime = Fixed
        try:
            signer.add_auth(req)
        finally:
            botocore.auth.datetime.datetime = orig
    else:
        signer.add_auth(req)
    return dict(req.headers)


def test_skew_tamper_unsigned(secured):
    srv, admin, _, _ = secured
    body = b"{}"
    ok = requests.post(srv.endpoint + "/", data=body, headers=signed(srv.endpoint, *admin, body), timeout=10)
    assert ok.status_code == 200, ok.text
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    skewed = requests.post(srv.endpoint + "/", data=body, headers=signed(srv.endpoint, *admin, body, when=old), timeout=10)
    # The JSON protocols answer signature errors with 400 (frontdoor.rs).
    assert skewed.status_code == 400 and skewed.json()["__type"] == "InvalidSignatureException"
    assert "Signature expired" in skewed.json()["message"]
    tampered = requests.post(srv.endpoint + "/", data=b'{"Limit": 1}',
                             headers=signed(srv.endpoint, *admin, body), timeout=10)
    assert tampered.json()["__type"] == "InvalidSignatureException"
    unsigned = requests.post(srv.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"}, timeout=10)
    assert unsigned.status_code == 400 and unsigned.json() == {
        "__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"}


def test_aws_cli_with_keys_and_cloudwatch(secured):
    srv, admin, reader, _ = secured
    env = dict(os.environ, AWS_ACCESS_KEY_ID=admin[0], AWS_SECRET_ACCESS_KEY=admin[1], AWS_DEFAULT_REGION="us-east-1")
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run([aws, "--endpoint-url", srv.endpoint, "kinesis", "list-streams", "--output", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["StreamNames"] == ["s1", "s2"]
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    out = subprocess.run([aws, "--endpoint-url", srv.endpoint, "kinesis", "list-streams"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "InvalidSignatureException" in out.stderr
    client(srv.endpoint, *admin, service="cloudwatch").list_metrics(Namespace="AWS/Kinesis")
    with pytest.raises(ClientError) as e:
        client(srv.endpoint, *reader, service="cloudwatch").list_metrics(Namespace="AWS/Kinesis")
    assert code(e) == "AccessDeniedException"


def test_open_mode_refuses_non_loopback(tmp_path):
    out = subprocess.run([str(kin.runnel_bin()), "serve", "--addr", "0.0.0.0:0", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "refusing to listen on 0.0.0.0:0 without authentication" in out.stderr
    assert "--auth enforced" in out.stderr


def test_resource_policy_deny_wins_and_allow_grants(secured):
    srv, admin, reader, denied = secured
    a = client(srv.endpoint, *admin)
    d = client(srv.endpoint, *denied)
    r = client(srv.endpoint, *reader)
    s2 = kin.stream_arn("s2")
    deny = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::000000000000:user/no-deletes"},
        "Action": "kinesis:PutRecord*", "Resource": s2}]}
    a.put_resource_policy(ResourceARN=s2, Policy=json.dumps(deny))
    assert json.loads(a.get_resource_policy(ResourceARN=s2)["Policy"]) == deny
    with pytest.raises(ClientError) as e:
        d.put_record(StreamName="s2", Data=b"x", PartitionKey="k")
    assert code(e) == "AccessDeniedException"
    assert "explicit deny in a resource-based policy" in e.value.response["Error"]["Message"]
    d.put_record(StreamName="s1", Data=b"x", PartitionKey="k")  # other streams unaffected
    a.put_record(StreamName="s2", Data=b"x", PartitionKey="k")  # other principals unaffected
    a.delete_resource_policy(ResourceARN=s2)
    d.put_record(StreamName="s2", Data=b"x", PartitionKey="k")
    # A resource policy can also grant: reader may now read s2.
    grant = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/reader"},
                            "Action": "kinesis:GetShardIterator", "Resource": s2}]}
    a.put_resource_policy(ResourceARN=s2, Policy=json.dumps(grant))
    r.get_shard_iterator(StreamName="s2", ShardId="shardId-000000000000", ShardIteratorType="LATEST")
    with pytest.raises(ClientError) as e:
        a.put_resource_policy(ResourceARN=s2, Policy="not json")
    assert code(e) == "InvalidArgumentException"
    with pytest.raises(ClientError) as e:
        a.get_resource_policy(ResourceARN=kin.stream_arn("nope"))
    assert code(e) == "ResourceNotFoundException"
    a.delete_resource_policy(ResourceARN=s2)


def test_presigned_query_string(secured):
    srv, admin, _, _ = secured
    body = b"{}"
    req = botocore.awsrequest.AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"})
    botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(*admin), "kinesis", "us-east-1",
                                 expires=60).add_auth(req)
    assert "X-Amz-Signature=" in req.url and "Authorization" not in req.headers
    # botocore moves the body into the query string for presigned requests.
    ok = requests.post(req.url, data=req.data, headers=dict(req.headers), timeout=10)
    assert ok.status_code == 200, ok.text
    assert ok.json()["StreamNames"] == ["s1", "s2"]
    forged = req.url.replace("X-Amz-Expires=60", "X-Amz-Expires=600")
    bad = requests.post(forged, data=req.data, headers=dict(req.headers), timeout=10)
    assert bad.json()["__type"] == "InvalidSignatureException"
