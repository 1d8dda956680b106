"""The audit trail: every API call is a CloudTrail-format JSON line with the
right principal and error code; payloads and secrets never appear in it."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

import kin
from test_auth import add_principal, client

pytestmark = pytest.mark.runnel_only


def read_trail(path, done, deadline_s: float = 10.0) -> list[dict]:
    """Reads the trail until `done(events)` (the writer thread is asynchronous)."""
    end = time.time() + deadline_s
    while time.time() < end:
        if path.exists():
            lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
            if done(lines):
                return lines
        time.sleep(0.05)
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


@pytest.mark.parametrize("data_events", [True, False])
def test_every_call_is_audited(tmp_path, data_events):
    data = tmp_path / "data"
    data.mkdir()
    pfile = data / "principals.json"
    admin = add_principal(tmp_path, pfile, "admin", {"Statement": [{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}]})
    reader = add_principal(tmp_path, pfile, "reader", {"Statement": [{"Effect": "Allow", "Action": "kinesis:List*", "Resource": "*"}]})
    cfg = tmp_path / "runnel.toml"
    cfg.write_text(f"audit_data_events = {'true' if data_events else 'false'}\n")
    srv = kin.RunnelProcess(data_dir=data, extra_args=["--config", str(cfg), "--auth", "enforced",
                                                       "--principals-file", str(pfile)]).start()
    try:
        a = client(srv.endpoint, *admin)
        r = client(srv.endpoint, *reader)
        a.create_stream(StreamName="audited", ShardCount=1)
        kin.wait_status(a, "audited")  # DescribeStreamSummary calls, recorded too
        a.put_record(StreamName="audited", Data=b"PAYLOAD-MUST-NOT-APPEAR", PartitionKey="pk")
        r.list_streams()
        with pytest.raises(ClientError):
            r.delete_stream(StreamName="audited")
        with pytest.raises(ClientError):
            client(srv.endpoint, admin[0], "wrong").list_streams()
        trail_path = data / "audit" / "audit.log"
        events = read_trail(trail_path, lambda ev: any(e["errorCode"] == "InvalidSignatureException" for e in ev))
        names = [e["eventName"] for e in events]
        assert names[0] == "CreateStream" and "DescribeStreamSummary" in names
        assert ("PutRecord" in names) == data_events
        create = events[0]
        assert create["eventSource"] == "kinesis.amazonaws.com" and create["awsRegion"] == "us-east-1"
        assert create["userIdentity"]["userName"] == "admin" and create["userIdentity"]["accessKeyId"] == admin[0]
        assert create["userIdentity"]["arn"] == "arn:aws:iam::000000000000:user/admin"
        assert create["requestParameters"]["StreamName"] == "audited" and create["errorCode"] is None
        assert create["sourceIPAddress"] == "127.0.0.1" and create["userAgent"].startswith("Boto3")
        assert create["eventID"] and create["requestID"] and create["eventTime"].endswith("Z")
        listed = [e for e in events if e["eventName"] == "ListStreams"]
        assert listed[0]["userIdentity"]["userName"] == "reader" and listed[0]["readOnly"] is True
        denied = [e for e in events if e["eventName"] == "DeleteStream"]
        assert denied and denied[0]["errorCode"] == "AccessDeniedException"
        assert denied[0]["userIdentity"]["accessKeyId"] == reader[0]
        bad = [e for e in events if e["eventName"] == "ListStreams" and e["errorCode"] == "InvalidSignatureException"]
        assert bad and bad[0]["userIdentity"]["type"] == "Unknown"
        if data_events:
            put = next(e for e in events if e["eventName"] == "PutRecord")
            assert put["managementEvent"] is False and put["requestParameters"]["PartitionKey"] == "pk"
            assert "Data" not in put["requestParameters"]
        raw = trail_path.read_text()
        assert "PAYLOAD-MUST-NOT-APPEAR" not in raw and "UEFZTE9BRC" not in raw  # nor its base64
        assert admin[1] not in raw and reader[1] not in raw
    finally:
        srv.cleanup()
