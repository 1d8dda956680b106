"""TLS: `--tls-self-signed` serves HTTPS (ALPN h2 and http/1.1) that boto3,
the aws CLI and an HTTP/2 client trust through the generated CA."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import httpx
import pytest
import requests

import kin

pytestmark = pytest.mark.runnel_only


def start_tls(proc: kin.RunnelProcess) -> kin.RunnelProcess:
    """RunnelProcess.start, with the health check made over HTTPS."""
    import time

    def wait_tls(endpoint, popen=None):
        ca = proc.data_dir / "tls" / "ca.pem"
        deadline = time.time() + 30
        while time.time() < deadline:
            if popen is not None and popen.poll() is not None:
                raise RuntimeError("runnel exited")
            if ca.exists():
                try:
                    if requests.get(endpoint.replace("http://", "https://") + "/health", verify=str(ca),
                                    timeout=2).status_code == 200:
                        return
                except requests.RequestException:
                    pass
            time.sleep(0.05)
        raise RuntimeError("runnel did not answer over TLS")

    orig = kin.wait_healthy
    kin.wait_healthy = wait_tls
    try:
        return proc.start()
    finally:
        kin.wait_healthy = orig


@pytest.fixture(scope="module")
def tls_server():
    srv = start_tls(kin.RunnelProcess(extra_args=["--tls-self-signed"]))
    yield srv
    srv.cleanup()


def test_boto3_cli_and_h2_over_tls(tls_server):
    srv = tls_server
    ca = str(srv.data_dir / "tls" / "ca.pem")
    url = srv.endpoint.replace("http://", "https://")
    k = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                     aws_secret_access_key="x", verify=ca)
    k.create_stream(StreamName="tls", ShardCount=1)
    kin.wait_status(k, "tls")
    put = k.put_record(StreamName="tls", Data=b"over-tls", PartitionKey="k")
    assert put["ShardId"] == "shardId-000000000000"

    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run([aws, "--endpoint-url", url, "--ca-bundle", ca, "kinesis", "list-streams", "--output", "json"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["StreamNames"] == ["tls"]

    # Without trusting the CA the certificate is refused.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url + "/health", timeout=10)

    # HTTP/2 negotiated by ALPN.
    import ssl
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=ca)) as c:
        r = c.get(url + "/health")
        assert r.status_code == 200 and r.http_version == "HTTP/2"

    # Plain HTTP on the TLS port does not get an answer as if it were served.
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(srv.endpoint + "/health", timeout=5)
