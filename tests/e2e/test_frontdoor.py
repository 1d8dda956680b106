"""The front door: connection deadlines and the per-address cap (no client can
hold a slot by saying nothing), AWS's answers to unsigned, malformed and
non-POST requests in open mode, CORS, `Connection: close`, and the payload
hash rules of SigV4 in enforced mode."""

from __future__ import annotations

import json
import socket
import select
import ssl
import time
from urllib.parse import urlparse

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import requests

import kin
from test_auth import add_principal, run_auth  # noqa: F401  (principals for enforced mode)
from test_tls import start_tls

pytestmark = pytest.mark.runnel_only

# Short deadlines so the tests are quick; the defaults are in runnel.toml.
FIRST_BYTE_MS = 800
HANDSHAKE_MS = 800
HEADER_MS = 1200
BODY_MS = 1200
IDLE_MS = 1500
PER_ADDRESS = 8
# Slack for a loaded machine: a deadline may fire this much late.
SLACK_S = 4.0

JSON_CT = "application/x-amz-json-1.1"
LIST = {"Content-Type": JSON_CT, "X-Amz-Target": "Kinesis_20131202.ListStreams"}
MISSING_MSG = "Missing Authentication Token"


def write_config(path, **extra) -> str:
    settings = {
        "first_byte_timeout_ms": FIRST_BYTE_MS,
        "tls_handshake_timeout_ms": HANDSHAKE_MS,
        "header_timeout_ms": HEADER_MS,
        "body_timeout_ms": BODY_MS,
        "idle_timeout_ms": IDLE_MS,
        "connections_max": 64,
        "connections_per_address_max": PER_ADDRESS,
        **extra,
    }
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    return str(path)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    cfg = write_config(tmp_path_factory.mktemp("frontdoor") / "runnel.toml")
    proc = kin.RunnelProcess(extra_args=["--config", cfg]).start()
    yield proc
    proc.kill()
    proc.cleanup()


def addr(proc) -> tuple[str, int]:
    return "127.0.0.1", proc.port


def connect(proc, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(addr(proc))
    return s


def closed_within(s: socket.socket, limit_s: float) -> tuple[float, bytes]:
    """Reads until the server closes; returns (seconds it took, bytes received)."""
    start = time.monotonic()
    got = b""
    s.settimeout(0.2)
    while time.monotonic() - start < limit_s:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.monotonic() - start, got
        if not chunk:
            return time.monotonic() - start, got
        got += chunk
    raise AssertionError(f"connection still open after {limit_s} s (received {got[:200]!r})")


def open_count(socks: list[socket.socket]) -> int:
    """How many of `socks` the server still holds open (a closed one reads EOF)."""
    readable, _, _ = select.select(socks, [], [], 0.1)
    return len(socks) - len(readable)


def signed_headers() -> dict:
    return kin._auth_headers()


def list_streams(proc, **kw) -> requests.Response:
    return requests.post(proc.endpoint + "/", data=b"{}", headers={**LIST, **signed_headers()}, timeout=10, **kw)


# ---------------------------------------------------------------- deadlines


def test_silent_connection_closed_at_first_byte_deadline(srv):
    s = connect(srv)
    took, got = closed_within(s, FIRST_BYTE_MS / 1000 + SLACK_S)
    assert got == b"" and took >= FIRST_BYTE_MS / 1000 * 0.8, took


def test_one_byte_then_silence_closed(srv):
    s = connect(srv)
    s.sendall(b"P")
    took, _ = closed_within(s, HEADER_MS / 1000 + SLACK_S)
    assert took >= HEADER_MS / 1000 * 0.8, took


def test_partial_headers_closed(srv):
    s = connect(srv)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: ")
    closed_within(s, HEADER_MS / 1000 + SLACK_S)


def test_h2c_preface_then_silence_closed(srv):
    s = connect(srv)
    # The HTTP/2 connection preface and an empty SETTINGS frame, then nothing.
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    took, got = closed_within(s, HEADER_MS / 1000 + SLACK_S)
    # The server's SETTINGS and, on close, a GOAWAY frame (type 7).
    assert got[3:4] == b"\x04", got[:20]
    assert b"\x07" in got[9:], got


def test_headers_without_their_body_answered_and_closed(srv):
    s = connect(srv)
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {JSON_CT}\r\n"
            "X-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Length: 100\r\n\r\n{").encode()
    s.sendall(head)
    took, got = closed_within(s, BODY_MS / 1000 + SLACK_S)
    status_line, _, rest = got.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", got
    assert b"connection: close" in rest.lower(), got
    assert took >= BODY_MS / 1000 * 0.8, took


def test_idle_keep_alive_closed(srv):
    s = connect(srv)
    body = b"{}"
    hdrs = {**LIST, **signed_headers(), "Host": "127.0.0.1", "Content-Length": str(len(body))}
    s.sendall(("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode() + body)
    s.settimeout(10)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 OK"), first
    # Kept alive, then closed once idle for idle_timeout_ms.
    took, _ = closed_within(s, IDLE_MS / 1000 + SLACK_S)
    assert took >= IDLE_MS / 1000 * 0.8, took


def test_tls_silent_and_handshake_then_silence_closed(tmp_path):
    cfg = write_config(tmp_path / "runnel.toml")
    proc = start_tls(kin.RunnelProcess(extra_args=["--config", cfg, "--tls-self-signed"]))
    try:
        # No ClientHello at all.
        raw = connect(proc)
        closed_within(raw, HANDSHAKE_MS / 1000 + SLACK_S)
        # A complete handshake, then nothing.
        ctx = ssl.create_default_context(cafile=str(proc.data_dir / "tls" / "ca.pem"))
        tls = ctx.wrap_socket(connect(proc), server_hostname="localhost")
        assert tls.version() is not None
        start = time.monotonic()
        tls.settimeout(HEADER_MS / 1000 + SLACK_S)
        try:
            assert tls.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            pass
        took = time.monotonic() - start
        assert HEADER_MS / 1000 * 0.8 <= took < HEADER_MS / 1000 + SLACK_S, took
    finally:
        proc.kill()
        proc.cleanup()


def test_one_address_cannot_take_every_slot(srv):
    # 127.0.0.2 is another address on the loopback interface: the "attacker".
    held = [connect(srv, "127.0.0.2") for _ in range(PER_ADDRESS + 12)]
    try:
        time.sleep(0.3)
        assert open_count(held) == PER_ADDRESS
        # Everyone else is still served while the attacker holds its share.
        for _ in range(3):
            r = list_streams(srv)
            assert r.status_code == 200, r.text
        # And the attacker's silent sockets are gone after the first-byte deadline.
        time.sleep(FIRST_BYTE_MS / 1000 + 1.0)
        assert open_count(held) == 0
    finally:
        for s in held:
            s.close()
    assert srv.alive()


def test_subscription_outlives_idle_deadline(srv):
    k = kin.make_client(srv.endpoint)
    k.create_stream(StreamName="live", ShardCount=1)
    kin.wait_status(k, "live")
    arn = k.register_stream_consumer(StreamARN=kin.stream_arn("live"), ConsumerName="c")["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 30
    while k.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    events = k.subscribe_to_shard(ConsumerARN=arn, ShardId="shardId-000000000000",
                                  StartingPosition={"Type": "LATEST"})["EventStream"]
    # Longer than every deadline; the stream is a request in progress.
    time.sleep((IDLE_MS + HEADER_MS) / 1000 + 1)
    k.put_record(StreamName="live", Data=b"still here", PartitionKey="p")
    got = []
    for ev in events:
        got += [r["Data"] for r in ev["SubscribeToShardEvent"]["Records"]]
        if got:
            break
    assert got == [b"still here"]
    events.close()


# ---------------------------------------------------------------- AWS's front door, in open mode


def post(proc, headers: dict, query: str = "", body: bytes = b"{}") -> requests.Response:
    return requests.post(proc.endpoint + "/" + query, data=body, headers=headers, timeout=10)


def assert_aws_error(r: requests.Response, status: int, error_type: str, message: str):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == JSON_CT
    assert r.json() == {"__type": error_type, "message": message}


def test_unsigned_request_refused_in_open_mode(srv):
    assert_aws_error(post(srv, LIST), 400, "MissingAuthenticationTokenException", MISSING_MSG)
    # Query parameters that are not a presigned signature do not count.
    q = "?X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=c&X-Amz-Date=d"
    assert_aws_error(post(srv, LIST, q), 400, "MissingAuthenticationTokenException", MISSING_MSG)
    # A body that is not JSON is reported before the missing signature.
    r = post(srv, LIST, body=b"hello")
    assert r.status_code == 400 and r.json()["__type"] == "SerializationException", r.text
    # A well-formed but unverified signature is enough in open mode.
    assert post(srv, {**LIST, **signed_headers()}).status_code == 200


def test_malformed_authorization_header(srv):
    assert_aws_error(post(srv, {**LIST, "Authorization": "X"}), 400, "IncompleteSignatureException",
                     "Authorization header requires 'Credential' parameter. "
                     "Authorization header requires 'Signature' parameter. "
                     "Authorization header requires 'SignedHeaders' parameter. "
                     "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                     "Authorization=X")
    for header in ("AWS4- Signature=b Credential=a", "AWS4- Signature=b,Credential=a",
                   "AWS4- Signature=b, Credential=a"):
        r = post(srv, {**LIST, "Authorization": header, "Date": "a"})
        assert_aws_error(r, 400, "IncompleteSignatureException",
                         f"Authorization header requires 'SignedHeaders' parameter. Authorization={header}")


def test_malformed_presigned_query(srv):
    assert_aws_error(post(srv, LIST, "?X-Amz-Algorithm"), 400, "IncompleteSignatureException",
                     "AWS query-string parameters must include 'X-Amz-Algorithm'. "
                     "AWS query-string parameters must include 'X-Amz-Credential'. "
                     "AWS query-string parameters must include 'X-Amz-Signature'. "
                     "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
                     "AWS query-string parameters must include 'X-Amz-Date'. "
                     "Re-examine the query-string parameters.")
    q = "?X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d"
    assert_aws_error(post(srv, LIST, q), 400, "IncompleteSignatureException",
                     "AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
                     "Re-examine the query-string parameters.")


def test_header_and_query_signature_together(srv):
    assert_aws_error(post(srv, {**LIST, "Authorization": "X"}, "?X-Amz-Algorithm"), 400,
                     "InvalidSignatureException",
                     "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")
    # A query that only resembles the algorithm parameter leaves the header's own error.
    r = post(srv, {**LIST, "Authorization": "X"}, "?X-Amz-Algorith")
    assert r.json()["__type"] == "IncompleteSignatureException"


ACCESS_DENIED_XML = ("<AccessDeniedException>\n"
                     "  <Message>Unable to determine service/operation name to be authorized</Message>\n"
                     "</AccessDeniedException>\n")
MISSING_XML = ("<MissingAuthenticationTokenException>\n"
               "  <Message>Missing Authentication Token</Message>\n"
               "</MissingAuthenticationTokenException>\n")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_get_aws_xml(srv, method):
    r = requests.request(method, srv.endpoint + "/", headers=signed_headers(), timeout=10)
    assert (r.status_code, r.text) == (403, ACCESS_DENIED_XML)
    assert "Content-Type" not in r.headers and r.headers["x-amzn-RequestId"]
    r = requests.request(method, srv.endpoint + "/", timeout=10)
    assert (r.status_code, r.text) == (403, MISSING_XML)


def test_non_json_content_type_gets_aws_xml(srv):
    r = post(srv, {"Content-Type": "text/plain", **signed_headers()})
    assert (r.status_code, r.text) == (403, ACCESS_DENIED_XML)
    r = post(srv, {"Content-Type": "text/plain", "X-Amz-Target": "Kinesis_20131202.ListStreams",
                   **signed_headers()})
    assert (r.status_code, r.text) == (404, "<UnknownOperationException/>\n")


def test_runnel_paths_stay_unsigned(srv):
    for path in ("/health", "/metrics", "/console/"):
        assert requests.get(srv.endpoint + path, timeout=10).status_code == 200, path
    assert requests.get(srv.endpoint + "/console/nope.js", timeout=10).status_code == 404


def test_cors_preflight(srv):
    r = requests.options(srv.endpoint + "/", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-amz-target, authorization, x-amz-date"}, timeout=10)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "POST"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-amz-target, authorization, x-amz-date"
    assert r.headers["Access-Control-Max-Age"] == "172800"
    assert r.headers["Content-Length"] == "0"
    # Without Origin, OPTIONS is just another non-POST method.
    r = requests.options(srv.endpoint + "/", timeout=10)
    assert (r.status_code, r.text) == (403, MISSING_XML)


def test_responses_to_a_page_allow_its_origin(srv):
    r = post(srv, {**LIST, **signed_headers(), "Origin": "http://app.example"})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    exposed = [h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")]
    assert {"x-amzn-requestid", "x-amzn-errortype"} <= set(exposed)
    r = post(srv, {**LIST, "Origin": "http://app.example"})
    assert r.status_code == 400 and r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in list_streams(srv).headers


def test_404_with_unread_body_says_connection_close(srv):
    s = connect(srv)
    s.sendall(b"PUT /health/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    _, got = closed_within(s, 5)
    head = got.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 404"), got
    assert b"\r\nconnection: close" in head, got


# ---------------------------------------------------------------- payload hashes, enforced


@pytest.fixture(scope="module")
def enforced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("frontdoor-auth")
    data = tmp / "data"
    data.mkdir()
    pfile = data / "principals.json"
    admin = add_principal(tmp, pfile, "admin", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}]})
    proc = kin.RunnelProcess(data_dir=data, extra_args=["--auth", "enforced", "--principals-file", str(pfile)]).start()
    yield proc, admin
    proc.kill()
    proc.cleanup()


class UnsignedPayloadAuth(botocore.auth.SigV4Auth):
    """SigV4 as S3 allows it: the payload left out of the signature."""

    def payload(self, request):
        return "UNSIGNED-PAYLOAD"

    def add_auth(self, request):
        request.headers["X-Amz-Content-SHA256"] = "UNSIGNED-PAYLOAD"
        super().add_auth(request)


MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


def test_unsigned_payload_refused_on_signed_requests(enforced):
    proc, admin = enforced
    creds = botocore.credentials.Credentials(*admin)
    req = botocore.awsrequest.AWSRequest(method="POST", url=proc.endpoint + "/", data=b"{}", headers=dict(LIST))
    UnsignedPayloadAuth(creds, "kinesis", "us-east-1").add_auth(req)
    r = requests.post(req.url, data=b'{"Limit": 1}', headers=dict(req.headers), timeout=10)
    assert_aws_error(r, 400, "InvalidSignatureException", MISMATCH)
    # Even with the very body it was made for.
    r = requests.post(req.url, data=b"{}", headers=dict(req.headers), timeout=10)
    assert_aws_error(r, 400, "InvalidSignatureException", MISMATCH)
    # The same request with its payload signed is served.
    req = botocore.awsrequest.AWSRequest(method="POST", url=proc.endpoint + "/", data=b"{}", headers=dict(LIST))
    botocore.auth.SigV4Auth(creds, "kinesis", "us-east-1").add_auth(req)
    assert requests.post(req.url, data=b"{}", headers=dict(req.headers), timeout=10).status_code == 200


class HostOnlyQueryAuth(botocore.auth.SigV4QueryAuth):
    """A presigned URL that signs only `host` and leaves the payload unsigned."""

    def headers_to_sign(self, request):
        h = super().headers_to_sign(request)
        for name in list(h.keys()):
            if name != "host":
                del h[name]
        return h

    def payload(self, request):
        return "UNSIGNED-PAYLOAD"


def test_presigned_url_cannot_choose_operation_or_body(enforced):
    proc, admin = enforced
    creds = botocore.credentials.Credentials(*admin)
    req = botocore.awsrequest.AWSRequest(method="POST", url=proc.endpoint + "/", headers={})
    HostOnlyQueryAuth(creds, "kinesis", "us-east-1", expires=60).add_auth(req)
    assert "X-Amz-SignedHeaders=host&" in req.url or req.url.endswith("X-Amz-SignedHeaders=host")
    # The holder picks an operation: it was not signed.
    r = requests.post(req.url, data=b'{"StreamName": "x", "ShardCount": 1}', headers={
        "Content-Type": JSON_CT, "X-Amz-Target": "Kinesis_20131202.CreateStream"}, timeout=10)
    assert_aws_error(r, 400, "InvalidSignatureException",
                     "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.")


class TargetSignedUnsignedPayload(HostOnlyQueryAuth):
    def headers_to_sign(self, request):
        h = botocore.auth.SigV4QueryAuth.headers_to_sign(self, request)
        for name in list(h.keys()):
            if name not in ("host", "x-amz-target"):
                del h[name]
        return h


def test_presigned_request_with_a_body_must_sign_it(enforced):
    proc, admin = enforced
    creds = botocore.credentials.Credentials(*admin)
    hdrs = {"X-Amz-Target": "Kinesis_20131202.ListStreams"}
    req = botocore.awsrequest.AWSRequest(method="POST", url=proc.endpoint + "/", headers=dict(hdrs))
    TargetSignedUnsignedPayload(creds, "kinesis", "us-east-1", expires=60).add_auth(req)
    # Without a body, UNSIGNED-PAYLOAD is what was signed, and it serves.
    r = requests.post(req.url, data=b"", headers={"Content-Type": JSON_CT, **hdrs}, timeout=10)
    assert r.status_code != 400 or r.json()["__type"] not in ("InvalidSignatureException",
                                                              "IncompleteSignatureException"), r.text
    # With a body the holder chose, it does not verify.
    r = requests.post(req.url, data=b'{"Limit": 1}', headers={"Content-Type": JSON_CT, **hdrs}, timeout=10)
    assert_aws_error(r, 400, "InvalidSignatureException", MISMATCH)


def test_console_requests_pass_the_front_door(srv, tmp_path):
    """The console's own api.js, run in node with fetch captured: the request it
    builds is served in open mode."""
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node")
    (tmp_path / "api.mjs").write_text(requests.get(srv.endpoint + "/console/api.js", timeout=10).text)
    (tmp_path / "run.mjs").write_text(
        "globalThis.fetch = async (url, opts) => {\n"
        "  console.log(JSON.stringify({ url, headers: opts.headers, body: opts.body }));\n"
        "  return new Response('{}', { status: 200 });\n"
        "};\n"
        "const api = await import('./api.mjs');\n"
        "await api.kinesis('ListStreams', {});\n"
        "await api.cloudwatch('ListMetrics', { Namespace: 'AWS/Kinesis' });\n")
    out = subprocess.run([node, str(tmp_path / "run.mjs")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    calls = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(calls) == 2
    for call in calls:
        assert call["url"] == "/"
        r = requests.post(srv.endpoint + "/", data=call["body"], headers=call["headers"], timeout=10)
        assert r.status_code == 200, (call, r.text)


def test_client_that_stops_reading_is_dropped(srv):
    """A request in progress whose client reads nothing: once no byte has moved
    for the stall allowance (three 5 s SubscribeToShard heartbeats, as the idle
    deadline here is shorter), the connection is dropped."""
    import base64

    k = kin.make_client(srv.endpoint)
    k.create_stream(StreamName="big", ShardCount=1)
    kin.wait_status(k, "big")
    blob = b"x" * (1000 * 1000)
    for _ in range(3):
        k.put_records(StreamName="big", Records=[{"Data": blob, "PartitionKey": "p"}] * 3)
    it = k.get_shard_iterator(StreamName="big", ShardId="shardId-000000000000",
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    s.connect(addr(srv))
    body = json.dumps({"ShardIterator": it}).encode()
    hdrs = {"Content-Type": JSON_CT, "X-Amz-Target": "Kinesis_20131202.GetRecords", **signed_headers(),
            "Host": "127.0.0.1", "Content-Length": str(len(body))}
    s.sendall(("POST / HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n").encode() + body)
    time.sleep(15 + SLACK_S + 2)
    # Now read: the response stops short, the connection closed under it.
    _, got = closed_within(s, 20)
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), got[:200]
    # The whole answer would be nine base64 records; far less arrived, unterminated.
    assert len(rest) < len(base64.b64encode(blob)) * 9, len(rest)
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")]
    if lengths:
        assert len(rest) < int(lengths[0].split(b":")[1])
    else:
        assert not rest.endswith(b"0\r\n\r\n")
    # The server is fine and serves others.
    assert list_streams(srv).status_code == 200


def test_h2_connection_without_streams_closed_after_idle(srv):
    """HTTP/2 (h2c): a request is served, then with no open stream the
    connection gets a GOAWAY and is closed at the idle deadline."""
    import h2.config
    import h2.connection
    import h2.events

    s = connect(srv)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    body = b"{}"
    conn.send_headers(1, [(":method", "POST"), (":path", "/"), (":scheme", "http"),
                          (":authority", "127.0.0.1"), ("content-type", JSON_CT),
                          ("x-amz-target", "Kinesis_20131202.ListStreams"),
                          *[(k.lower(), v) for k, v in signed_headers().items()],
                          ("content-length", str(len(body)))])
    conn.send_data(1, body, end_stream=True)
    s.sendall(conn.data_to_send())
    status, ended, served_at = None, False, None
    after = b""  # raw frames after the response, read without the h2 state machine
    goaway = None
    deadline = time.monotonic() + IDLE_MS / 1000 + SLACK_S + 5
    s.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        if ended:
            after += data
            # Frame headers: 3 bytes length, 1 byte type (7 = GOAWAY).
            pos = 0
            while goaway is None and pos + 9 <= len(after):
                if after[pos + 3] == 7:
                    goaway = time.monotonic()
                pos += 9 + int.from_bytes(after[pos:pos + 3], "big")
            continue
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                status = dict(ev.headers)[b":status"]
            elif isinstance(ev, h2.events.StreamEnded):
                ended, served_at = True, time.monotonic()
        out = conn.data_to_send()
        if out:
            s.sendall(out)
    else:
        raise AssertionError(f"h2 connection still open: status={status} ended={ended} after={after[:100]!r} goaway={goaway}")
    assert status == b"200" and ended
    assert goaway is not None, "no GOAWAY before the close"
    assert IDLE_MS / 1000 * 0.8 <= goaway - served_at < IDLE_MS / 1000 + SLACK_S, goaway - served_at
