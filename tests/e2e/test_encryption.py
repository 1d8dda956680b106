"""Encryption at rest: the local KMS (TrentService) and Start/StopStreamEncryption.

Runs its own server so it owns the data dir, and greps every file in it for
the plaintext of encrypted records: it must not be there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import kin

pytestmark = pytest.mark.runnel_only

AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module")
def srv():
    p = kin.RunnelProcess().start()
    try:
        yield p
    finally:
        p.cleanup()


def _client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=kin.REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=60),
    )


@pytest.fixture(scope="module")
def kms(srv):
    return _client("kms", srv.endpoint)


@pytest.fixture(scope="module")
def kinesis(srv):
    return kin.make_client(srv.endpoint)


def aws_cli(endpoint: str, tmp_path: Path, *args: str) -> dict:
    if not Path(AWS).exists():
        pytest.skip(f"aws CLI not installed at {AWS}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "creds"),
               AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
    p = subprocess.run([AWS, "--endpoint-url", endpoint, "--output", "json", *args],
                       env=env, capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, f"aws {' '.join(args)}: rc={p.returncode}\n{p.stderr}"
    return json.loads(p.stdout) if p.stdout.strip() else {}


def files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            hits.append(str(path.relative_to(root)))
    return hits


def kms_error(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


# ---------------------------------------------------------------- KMS

def test_kms_key_lifecycle(kms):
    meta = kms.create_key(Description="e2e key")["KeyMetadata"]
    key_id = meta["KeyId"]
    assert meta["Arn"] == f"arn:aws:kms:{kin.REGION}:{kin.ACCOUNT}:key/{key_id}"
    assert meta["Enabled"] is True and meta["KeyState"] == "Enabled"
    assert meta["KeyUsage"] == "ENCRYPT_DECRYPT" and meta["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert meta["Description"] == "e2e key"
    assert meta["CreationDate"] is not None
    assert key_id in [k["KeyId"] for k in kms.list_keys()["Keys"]]

    alias = f"alias/e2e-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert aliases[alias]["TargetKeyId"] == key_id
    assert aliases[alias]["AliasArn"] == f"arn:aws:kms:{kin.REGION}:{kin.ACCOUNT}:{alias}"
    with pytest.raises(kms.exceptions.AlreadyExistsException):
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    for ref in (key_id, meta["Arn"], alias, aliases[alias]["AliasArn"]):
        assert kms.describe_key(KeyId=ref)["KeyMetadata"]["KeyId"] == key_id
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId="alias/does-not-exist")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId=str(uuid.uuid4()))

    enc = kms.encrypt(KeyId=alias, Plaintext=b"hello kms", EncryptionContext={"k": "v"})
    assert enc["KeyId"] == meta["Arn"]
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"k": "v"})
    assert dec["Plaintext"] == b"hello kms" and dec["KeyId"] == meta["Arn"]
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])  # context missing
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=b"garbage-bytes")

    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert len(dk["Plaintext"]) == 32 and dk["KeyId"] == meta["Arn"]
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert len(kms.generate_data_key(KeyId=key_id, NumberOfBytes=64)["Plaintext"]) == 64
    with pytest.raises(kms.exceptions.ClientError) as e:
        kms.generate_data_key(KeyId=key_id)
    assert kms_error(e) == "ValidationException"

    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(kms.exceptions.DisabledException):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    with pytest.raises(kms.exceptions.DisabledException):
        kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])
    kms.enable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True

    default = kms.describe_key(KeyId="alias/aws/kinesis")["KeyMetadata"]
    assert default["KeyManager"] == "AWS"
    assert "alias/aws/kinesis" in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]


def test_kms_create_key_with_the_aws_cli(srv, kms, tmp_path):
    out = aws_cli(srv.endpoint, tmp_path, "kms", "create-key", "--description", "from the cli")
    key_id = out["KeyMetadata"]["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Description"] == "from the cli"
    listed = aws_cli(srv.endpoint, tmp_path, "kms", "list-keys")
    assert key_id in [k["KeyId"] for k in listed["Keys"]]


def test_master_key_file_is_private(srv):
    mode = (srv.data_dir / "master.key").stat().st_mode & 0o777
    assert mode == 0o600


# ---------------------------------------------------------------- streams

def read_all(kinesis, name: str, shard_id: str) -> list[dict]:
    it = kin.iterator(kinesis, name, shard_id, "TRIM_HORIZON")
    return kin.drain(kinesis, it)


def test_stream_encryption_end_to_end(srv, kms, kinesis, stream_name):
    key_id = kms.create_key(Description="stream key")["KeyMetadata"]["KeyId"]
    alias = f"alias/stream-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)
    kin.wait_status(kinesis, stream_name)
    shard_id = kin.list_all_shards(kinesis, stream_name)[0]["ShardId"]

    before = b"BEFORE-" + uuid.uuid4().hex.encode()
    put = kinesis.put_record(StreamName=stream_name, Data=before, PartitionKey="pk-before")
    assert put["EncryptionType"] == "NONE"

    kin.expect_error("KMSNotFoundException", kinesis.start_stream_encryption,
                     StreamName=stream_name, EncryptionType="KMS", KeyId="alias/nope")
    kin.expect_error("InvalidArgumentException", kinesis.start_stream_encryption,
                     StreamName=stream_name, EncryptionType="NONE", KeyId=alias)
    kinesis.start_stream_encryption(StreamName=stream_name, EncryptionType="KMS", KeyId=alias)
    kin.wait_status(kinesis, stream_name)
    desc = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert desc["EncryptionType"] == "KMS" and desc["KeyId"] == alias
    summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
    assert summary["EncryptionType"] == "KMS" and summary["KeyId"] == alias

    secret = b"TOP-SECRET-" + uuid.uuid4().hex.encode()
    secret_pk = "pk-secret-" + uuid.uuid4().hex
    put = kinesis.put_record(StreamName=stream_name, Data=secret, PartitionKey=secret_pk)
    assert put["EncryptionType"] == "KMS"
    batch_secret = b"BATCH-SECRET-" + uuid.uuid4().hex.encode()
    puts = kinesis.put_records(StreamName=stream_name,
                               Records=[{"Data": batch_secret, "PartitionKey": secret_pk}])
    assert puts["EncryptionType"] == "KMS" and puts["FailedRecordCount"] == 0

    recs = read_all(kinesis, stream_name, shard_id)
    assert [r["Data"] for r in recs] == [before, secret, batch_secret]
    assert [r["PartitionKey"] for r in recs] == ["pk-before", secret_pk, secret_pk]
    assert "EncryptionType" not in recs[0]
    assert recs[1]["EncryptionType"] == "KMS" and recs[2]["EncryptionType"] == "KMS"

    # Nothing of the encrypted records is on disk in the clear; the plaintext one is.
    for needle in (secret, batch_secret, secret_pk.encode()):
        assert files_containing(srv.data_dir, needle) == [], needle
    assert files_containing(srv.data_dir, before), "the grep must find plaintext records"

    # A disabled key stops reads and writes; enabling it again restores them.
    kms.disable_key(KeyId=key_id)
    it = kin.iterator(kinesis, stream_name, shard_id, "TRIM_HORIZON")
    kin.expect_error("KMSDisabledException", kinesis.get_records, ShardIterator=it)
    kin.expect_error("KMSDisabledException", kinesis.put_record,
                     StreamName=stream_name, Data=b"x", PartitionKey="x")
    kms.enable_key(KeyId=key_id)
    assert [r["Data"] for r in kin.drain(kinesis, it)] == [before, secret, batch_secret]

    # After stopping, new records are plaintext again (and the grep finds them).
    kinesis.stop_stream_encryption(StreamName=stream_name, EncryptionType="KMS", KeyId=alias)
    kin.wait_status(kinesis, stream_name)
    desc = kinesis.describe_stream(StreamName=stream_name)["StreamDescription"]
    assert desc["EncryptionType"] == "NONE" and "KeyId" not in desc
    after = b"AFTER-" + uuid.uuid4().hex.encode()
    put = kinesis.put_record(StreamName=stream_name, Data=after, PartitionKey="pk-after-stop")
    assert put["EncryptionType"] == "NONE"
    recs = read_all(kinesis, stream_name, shard_id)
    assert [r["Data"] for r in recs] == [before, secret, batch_secret, after]
    assert [r.get("EncryptionType") for r in recs] == [None, "KMS", "KMS", None]
    assert files_containing(srv.data_dir, after)
    assert files_containing(srv.data_dir, b"pk-after-stop")
    assert files_containing(srv.data_dir, secret) == []

    # A disabled key no longer blocks the stream once encryption stopped,
    # but the records it protects stay unreadable until it is enabled.
    kms.disable_key(KeyId=key_id)
    it = kin.iterator(kinesis, stream_name, shard_id, "LATEST")
    assert kinesis.get_records(ShardIterator=it)["Records"] == []
    it = kin.iterator(kinesis, stream_name, shard_id, "TRIM_HORIZON")
    kin.expect_error("KMSDisabledException", kinesis.get_records, ShardIterator=it)
    kms.enable_key(KeyId=key_id)
    kinesis.delete_stream(StreamName=stream_name)


def test_encrypted_records_survive_restart_and_reshard(tmp_path, stream_name):
    p = kin.RunnelProcess(data_dir=tmp_path / "data").start()
    try:
        kinesis = kin.make_client(p.endpoint)
        kinesis.create_stream(StreamName=stream_name, ShardCount=1)
        kin.wait_status(kinesis, stream_name)
        kinesis.start_stream_encryption(StreamName=stream_name, EncryptionType="KMS",
                                        KeyId="alias/aws/kinesis")
        kin.wait_status(kinesis, stream_name)
        first = b"RESTART-SECRET-" + uuid.uuid4().hex.encode()
        kinesis.put_record(StreamName=stream_name, Data=first, PartitionKey="a")
        shard = kin.list_all_shards(kinesis, stream_name)[0]
        lo, hi = kin.hash_range(shard)
        kinesis.split_shard(StreamName=stream_name, ShardToSplit=shard["ShardId"],
                            NewStartingHashKey=str((lo + hi) // 2 + 1))
        kin.wait_status(kinesis, stream_name)
        second = b"CHILD-SECRET-" + uuid.uuid4().hex.encode()
        put = kinesis.put_record(StreamName=stream_name, Data=second, PartitionKey="b")
        assert put["EncryptionType"] == "KMS"
        p.stop()
        p.start()
        kinesis = kin.make_client(p.endpoint)
        got = {}
        for s in kin.list_all_shards(kinesis, stream_name):
            for r in read_all(kinesis, stream_name, s["ShardId"]):
                got[r["Data"]] = r.get("EncryptionType")
        assert got == {first: "KMS", second: "KMS"}
        assert files_containing(p.data_dir, first) == []
        assert files_containing(p.data_dir, second) == []
    finally:
        p.cleanup()


def test_subscribe_to_shard_decrypts(srv, kinesis, stream_name):
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)
    kin.wait_status(kinesis, stream_name)
    kinesis.start_stream_encryption(StreamName=stream_name, EncryptionType="KMS",
                                    KeyId="alias/aws/kinesis")
    kin.wait_status(kinesis, stream_name)
    arn = kinesis.register_stream_consumer(StreamARN=kin.stream_arn(stream_name),
                                           ConsumerName="enc")["Consumer"]["ConsumerARN"]
    for _ in range(500):
        c = kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]
        if c["ConsumerStatus"] == "ACTIVE":
            break
        time.sleep(kin.POLL_INTERVAL_S)
    stored = b"PUSH-SECRET-STORED-" + uuid.uuid4().hex.encode()
    kinesis.put_record(StreamName=stream_name, Data=stored, PartitionKey="pk-stored")
    shard_id = kin.list_all_shards(kinesis, stream_name)[0]["ShardId"]
    resp = kinesis.subscribe_to_shard(ConsumerARN=arn, ShardId=shard_id,
                                      StartingPosition={"Type": "TRIM_HORIZON"})
    got = []
    live = b"PUSH-SECRET-LIVE-" + uuid.uuid4().hex.encode()
    for event in resp["EventStream"]:
        records = event.get("SubscribeToShardEvent", {}).get("Records", [])
        got.extend((r["Data"], r["PartitionKey"], r.get("EncryptionType")) for r in records)
        if len(got) == 1 and records:
            # Caught up from the log; the next one arrives through the live push.
            kinesis.put_record(StreamName=stream_name, Data=live, PartitionKey="pk-live")
        if len(got) >= 2:
            break
    resp["EventStream"].close()
    assert got == [(stored, "pk-stored", "KMS"), (live, "pk-live", "KMS")]
    assert files_containing(srv.data_dir, live) == []


def test_master_key_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNNEL_MASTER_KEY", "ab" * 32)
    p = kin.RunnelProcess(data_dir=tmp_path / "data").start()
    try:
        kms = _client("kms", p.endpoint)
        blob = kms.encrypt(KeyId="alias/aws/kinesis", Plaintext=b"env-keyed")["CiphertextBlob"]
        assert not (p.data_dir / "master.key").exists()
        p.stop()
        p.start()
        kms = _client("kms", p.endpoint)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"env-keyed"
        p.stop()
        # Another master key does not unwrap the stored keys: refuse to start.
        monkeypatch.setenv("RUNNEL_MASTER_KEY", "cd" * 32)
        with pytest.raises(RuntimeError):
            p.start()
        assert "master key does not unwrap" in p.log_tail()
    finally:
        p.cleanup()
