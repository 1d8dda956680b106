"""The aws CLI (awscli v1, pinned in requirements.txt) pointed at the server."""

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kin

AWS = str(Path(sys.executable).parent / "aws")


@pytest.fixture
def aws(endpoint, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(tmp_path / "config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "creds"),
               AWS_PAGER="", AWS_MAX_ATTEMPTS="1")

    def run(*args, check=True):
        if not Path(AWS).exists():
            pytest.skip(f"aws CLI not installed at {AWS}")
        p = subprocess.run([AWS, "--endpoint-url", endpoint, "--output", "json", "kinesis", *args],
                           env=env, capture_output=True, text=True, timeout=90)
        if check:
            assert p.returncode == 0, f"aws {' '.join(args)}: rc={p.returncode}\n{p.stderr}"
            return json.loads(p.stdout) if p.stdout.strip() else {}
        return p

    return run


def test_cli_lifecycle(aws, kinesis, stream_name):
    aws("create-stream", "--stream-name", stream_name, "--shard-count", "2")
    try:
        kin.wait_status(kinesis, stream_name, "ACTIVE")
        assert stream_name in aws("list-streams")["StreamNames"]
        summary = aws("describe-stream-summary", "--stream-name", stream_name)["StreamDescriptionSummary"]
        assert summary["StreamName"] == stream_name
        assert summary["StreamStatus"] == "ACTIVE"
        assert summary["OpenShardCount"] == 2
        put = aws("put-record", "--stream-name", stream_name, "--partition-key", "cli-key",
                  "--data", "from the cli")
        shards = kin.list_all_shards(kinesis, stream_name)
        assert put["ShardId"] == kin.shard_for_hash(shards, kin.md5_hash_key("cli-key"))
        it = aws("get-shard-iterator", "--stream-name", stream_name, "--shard-id", put["ShardId"],
                 "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
        recs = aws("get-records", "--shard-iterator", it)["Records"]
        assert len(recs) == 1
        assert recs[0]["SequenceNumber"] == put["SequenceNumber"]
        assert recs[0]["PartitionKey"] == "cli-key"
        # awscli v1 takes --data as raw text (v2's `--cli-binary-format raw-in-base64-out`
        # behaviour; v1 has no such flag) and prints blobs base64-encoded.
        assert base64.b64decode(recs[0]["Data"]) == b"from the cli"
        assert kin.read_shard(kinesis, stream_name, put["ShardId"])[0]["Data"] == b"from the cli"
    finally:
        aws("delete-stream", "--stream-name", stream_name)
        kin.wait_gone(kinesis, stream_name)
    assert stream_name not in aws("list-streams")["StreamNames"]


def test_cli_error_exit_code(aws, stream_name):
    p = aws("describe-stream-summary", "--stream-name", stream_name, check=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr
