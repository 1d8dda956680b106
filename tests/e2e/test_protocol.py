"""The wire below the SDK: raw JSON 1.1 requests, CBOR, oversized bodies, h2c."""

import base64
import json
import socket
from urllib.parse import urlparse

import cbor2
import pytest

import kin


def test_unknown_operation(endpoint):
    status, _h, body = kin.raw_request(endpoint, "Kinesis_20131202.FlyToTheMoon", b"{}")
    assert status == 400
    assert kin.error_type(json.loads(body)) == "UnknownOperationException"


def test_unknown_service_prefix(endpoint):
    status, _h, body = kin.raw_request(endpoint, "Bogus_20990101.ListStreams", b"{}")
    assert status == 400
    assert kin.error_type(json.loads(body)) == "UnknownOperationException"


def test_malformed_json(endpoint):
    status, _h, body = kin.raw_request(endpoint, "ListStreams", b'{"Limit": 1,')
    assert status == 400
    assert kin.error_type(json.loads(body)) == "SerializationException"


def test_wrong_json_type(endpoint, stream_name):
    status, body = kin.raw_call(endpoint, "CreateStream", {"StreamName": stream_name, "ShardCount": "abc"})
    assert status == 400
    assert kin.error_type(body) == "SerializationException"
    status, body = kin.raw_call(endpoint, "DescribeStreamSummary", {"StreamName": stream_name})
    assert kin.error_type(body) == "ResourceNotFoundException"


def test_wrong_json_type_nested(endpoint, stream):
    status, body = kin.raw_call(endpoint, "PutRecords", {"StreamName": stream, "Records": {"Data": "eA=="}})
    assert status == 400
    assert kin.error_type(body) == "SerializationException"


def test_data_not_base64(endpoint, stream):
    status, body = kin.raw_call(endpoint, "PutRecord", {"StreamName": stream, "PartitionKey": "k",
                                                        "Data": "not base64!!"})
    assert status == 400
    assert kin.error_type(body) == "SerializationException"


def test_json_round_trip_and_headers(endpoint, stream):
    status, headers, body = kin.raw_request(
        endpoint, "PutRecord",
        json.dumps({"StreamName": stream, "PartitionKey": "k", "Data": base64.b64encode(b"raw").decode()}).encode())
    assert status == 200, body
    assert headers["content-type"].startswith(kin.JSON_CT)
    assert "x-amzn-requestid" in headers
    put = json.loads(body)
    assert put["ShardId"] == "shardId-000000000000"
    status, it = kin.raw_call(endpoint, "GetShardIterator", {
        "StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})
    status, recs = kin.raw_call(endpoint, "GetRecords", {"ShardIterator": it["ShardIterator"]})
    assert status == 200
    rec = recs["Records"][0]
    assert base64.b64decode(rec["Data"]) == b"raw"
    assert rec["SequenceNumber"] == put["SequenceNumber"]
    # JSON protocol timestamps are epoch seconds as numbers.
    assert isinstance(rec["ApproximateArrivalTimestamp"], (int, float))


def test_error_status_and_body(endpoint, stream_name):
    status, body = kin.raw_call(endpoint, "DescribeStream", {"StreamName": stream_name})
    assert status == 400
    assert kin.error_type(body) == "ResourceNotFoundException"
    assert body["message"] == kin.not_found_message(stream_name)


def _cbor(endpoint, op, payload):
    status, headers, body = kin.raw_request(endpoint, op, cbor2.dumps(payload), content_type=kin.CBOR_CT)
    assert headers.get("content-type", "").startswith(kin.CBOR_CT), headers
    return status, cbor2.loads(body)


@pytest.mark.kinesalite_diverges(reason="CBOR responses carry Data as a JSON Buffer object, not bytes")
def test_cbor_round_trip(endpoint, stream):
    data = bytes(range(256)) + b"\x00cbor"
    status, put = _cbor(endpoint, "PutRecord", {"StreamName": stream, "PartitionKey": "pk", "Data": data})
    assert status == 200, put
    assert put["ShardId"] == "shardId-000000000000"
    kin.assert_seq(put["SequenceNumber"])
    status, it = _cbor(endpoint, "GetShardIterator", {
        "StreamName": stream, "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"})
    assert status == 200, it
    status, recs = _cbor(endpoint, "GetRecords", {"ShardIterator": it["ShardIterator"], "Limit": 10})
    assert status == 200, recs
    assert len(recs["Records"]) == 1
    rec = recs["Records"][0]
    assert isinstance(rec["Data"], bytes) and rec["Data"] == data
    assert rec["PartitionKey"] == "pk"
    assert rec["SequenceNumber"] == put["SequenceNumber"]
    assert "NextShardIterator" in recs


def test_cbor_put_records_and_error(endpoint, stream, stream_name):
    status, r = _cbor(endpoint, "PutRecords", {"StreamName": stream, "Records": [
        {"Data": b"\x01\x02", "PartitionKey": "a"}, {"Data": b"", "PartitionKey": "b"}][:1]})
    assert status == 200, r
    assert r["FailedRecordCount"] == 0
    status, err = _cbor(endpoint, "DescribeStreamSummary", {"StreamName": stream_name})
    assert status == 400
    assert kin.error_type(err) == "ResourceNotFoundException"


def test_body_over_16_mib_rejected(endpoint, server, stream):
    """A huge body is refused (413 or 4xx, or the connection closed) and the server lives on."""
    u = urlparse(endpoint)
    size = 17 * 1024 * 1024
    head = (f"POST / HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            f"Content-Type: {kin.JSON_CT}\r\nX-Amz-Target: Kinesis_20131202.PutRecord\r\n"
            f"Content-Length: {size}\r\n\r\n").encode()
    status_line = b""
    with socket.create_connection((u.hostname, u.port), timeout=60) as s:
        s.sendall(head)
        chunk = b"a" * (1024 * 1024)
        try:
            for _ in range(17):
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            status_line = s.recv(4096).split(b"\r\n", 1)[0]
        except (ConnectionResetError, socket.timeout):
            pass
    if status_line:
        code = int(status_line.split()[1])
        assert 400 <= code < 500, status_line
    # Still serving.
    status, body = kin.raw_call(endpoint, "DescribeStreamSummary", {"StreamName": stream})
    assert status == 200, body
    if server is not None:
        assert server.alive()


@pytest.mark.runnel_only
def test_h2c_prior_knowledge(endpoint, stream):
    import httpx

    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        headers = {"Content-Type": kin.JSON_CT, "X-Amz-Target": "Kinesis_20131202.PutRecord",
                   **kin._auth_headers()}
        body = {"StreamName": stream, "PartitionKey": "k", "Data": base64.b64encode(b"over h2").decode()}
        r = client.post(endpoint + "/", headers=headers, content=json.dumps(body))
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200, r.text
        assert r.json()["ShardId"] == "shardId-000000000000"
        # Several requests multiplexed over the one connection.
        headers["X-Amz-Target"] = "Kinesis_20131202.DescribeStreamSummary"
        for _ in range(3):
            r = client.post(endpoint + "/", headers=headers, content=json.dumps({"StreamName": stream}))
            assert r.status_code == 200 and r.http_version == "HTTP/2"


@pytest.mark.runnel_only
def test_health(endpoint):
    import requests

    assert requests.get(endpoint + "/health", timeout=10).status_code == 200
