"""Metrics: /metrics (Prometheus), the CloudWatch API subset, enhanced
monitoring and alarms, checked with exact counts after known traffic."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import subprocess
import sys
import threading
import time

import boto3
import pytest
import requests

import kin

pytestmark = pytest.mark.runnel_only

CREDS = dict(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def cloudwatch(endpoint):
    return boto3.client("cloudwatch", endpoint_url=endpoint, **CREDS)


def server_now(endpoint) -> datetime.datetime:
    """The server's clock: other tests move the shared server's test clock."""
    ms = requests.post(endpoint + "/_runnel/test/clock/advance", json={"ms": 0}, timeout=10).json()["now_ms"]
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def window(endpoint: str):
    now = server_now(endpoint)
    return now - datetime.timedelta(minutes=10), now + datetime.timedelta(minutes=2)


def prom_value(text: str, name: str, labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def stat_sum(cw, metric: str, dims: list[dict]) -> float:
    start, end = window(cw.meta.endpoint_url)
    r = cw.get_metric_statistics(Namespace="AWS/Kinesis", MetricName=metric, Dimensions=dims,
                                 StartTime=start, EndTime=end, Period=60, Statistics=["Sum"])
    return sum(p["Sum"] for p in r["Datapoints"])


def test_prometheus_and_cloudwatch_agree_on_exact_counts(kinesis, endpoint, make_stream):
    name = make_stream(2)
    total = 0
    for batch in (123, 77):
        r = kinesis.put_records(StreamName=name, Records=[
            {"Data": b"x" * 10, "PartitionKey": f"k{i}"} for i in range(batch)])
        assert r["FailedRecordCount"] == 0
        total += batch
    read = sum(len(kin.read_shard(kinesis, name, s["ShardId"])) for s in kin.list_all_shards(kinesis, name))
    assert read == total

    text = requests.get(endpoint + "/metrics", timeout=10).text
    labels = f'stream_name="{name}"'
    assert prom_value(text, "aws_kinesis_incoming_records_sum", labels) == total
    assert prom_value(text, "aws_kinesis_incoming_bytes_sum", labels) > total * 10
    assert prom_value(text, "aws_kinesis_put_records_successful_records_sum", labels) == total
    assert prom_value(text, "aws_kinesis_put_records_success_count", labels) == 2
    assert prom_value(text, "aws_kinesis_get_records_records_sum", labels) == total

    cw = cloudwatch(endpoint)
    dims = [{"Name": "StreamName", "Value": name}]
    assert stat_sum(cw, "IncomingRecords", dims) == total
    assert stat_sum(cw, "GetRecords.Records", dims) == total

    # The aws CLI (pinned in the venv) gets the same number.
    env = dict(os.environ, AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    start, end = window(endpoint)
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run(
        [aws, "--endpoint-url", endpoint, "cloudwatch", "get-metric-statistics",
         "--namespace", "AWS/Kinesis", "--metric-name", "IncomingRecords",
         "--dimensions", f"Name=StreamName,Value={name}",
         "--start-time", start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--end-time", end.strftime("%Y-%m-%dT%H:%M:%SZ"),
         "--period", "60", "--statistics", "Sum", "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sum(p["Sum"] for p in json.loads(out.stdout)["Datapoints"]) == total

    metrics = cw.list_metrics(Namespace="AWS/Kinesis", Dimensions=[{"Name": "StreamName", "Value": name}])["Metrics"]
    names = {m["MetricName"] for m in metrics}
    assert {"IncomingRecords", "IncomingBytes", "PutRecords.Latency", "GetRecords.IteratorAgeMilliseconds"} <= names


def test_enhanced_monitoring_shard_level(kinesis, endpoint, make_stream):
    name = make_stream(2)
    r = kinesis.enable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["IncomingRecords"])
    assert r["CurrentShardLevelMetrics"] == [] and r["DesiredShardLevelMetrics"] == ["IncomingRecords"]
    summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["EnhancedMonitoring"][0]["ShardLevelMetrics"] == ["IncomingRecords"]
    kin.put_all(kinesis, name, [{"Data": b"y", "PartitionKey": f"p{i}"} for i in range(50)])
    cw = cloudwatch(endpoint)
    per_shard = 0
    for s in kin.list_all_shards(kinesis, name):
        per_shard += stat_sum(cw, "IncomingRecords", [{"Name": "StreamName", "Value": name},
                                                      {"Name": "ShardId", "Value": s["ShardId"]}])
    assert per_shard == 50
    r = kinesis.disable_enhanced_monitoring(StreamName=name, ShardLevelMetrics=["ALL"])
    assert r["DesiredShardLevelMetrics"] == []
    kin.expect_error("ValidationException", kinesis.enable_enhanced_monitoring, StreamName=name, ShardLevelMetrics=["Bogus"])


def test_put_metric_data_roundtrip(endpoint):
    cw = cloudwatch(endpoint)
    cw.put_metric_data(Namespace="KCL/app", MetricData=[
        {"MetricName": "MillisBehindLatest", "Value": 40.0, "Unit": "Milliseconds",
         "Dimensions": [{"Name": "Operation", "Value": "ProcessTask"}]},
        {"MetricName": "MillisBehindLatest", "Values": [10.0, 20.0], "Counts": [1.0, 3.0], "Unit": "Milliseconds",
         "Dimensions": [{"Name": "Operation", "Value": "ProcessTask"}]},
    ])
    start, end = window(endpoint)
    r = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[{
        "Id": "m1", "MetricStat": {"Metric": {"Namespace": "KCL/app", "MetricName": "MillisBehindLatest",
                                              "Dimensions": [{"Name": "Operation", "Value": "ProcessTask"}]},
                                   "Period": 60, "Stat": "Maximum"}}])
    assert r["MetricDataResults"][0]["Values"] == [40.0]
    s = cw.get_metric_statistics(Namespace="KCL/app", MetricName="MillisBehindLatest",
                                 Dimensions=[{"Name": "Operation", "Value": "ProcessTask"}],
                                 StartTime=start, EndTime=end, Period=60, Statistics=["SampleCount", "Sum"])
    assert s["Datapoints"][0]["SampleCount"] == 5 and s["Datapoints"][0]["Sum"] == 110
    with pytest.raises(Exception) as e:
        cw.put_metric_data(Namespace="AWS/Kinesis", MetricData=[{"MetricName": "X", "Value": 1.0}])
    assert "InvalidParameterValue" in str(e.value)


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alarm_fires_webhook_and_logs(tmp_path):
    hook = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    _Hook.received = []
    cfg = tmp_path / "runnel.toml"
    cfg.write_text(f"""
alarm_check_ms = 200
[[alarms]]
name = "too-many-records"
metric = "IncomingRecords"
dimensions = {{ StreamName = "alarmed" }}
statistic = "Sum"
threshold = 10
comparison = "GreaterThanThreshold"
webhook = "http://127.0.0.1:{hook.server_address[1]}/alarm"
""")
    srv = kin.RunnelProcess(extra_args=["--config", str(cfg)]).start()
    try:
        c = kin.make_client(srv.endpoint)
        c.create_stream(StreamName="alarmed", ShardCount=1)
        kin.wait_status(c, "alarmed")
        c.put_records(StreamName="alarmed", Records=[{"Data": b"a", "PartitionKey": "k"} for _ in range(5)])
        time.sleep(0.6)  # give the checker a few rounds: under the threshold, no ALARM
        assert all(n["NewStateValue"] != "ALARM" for n in _Hook.received)
        c.put_records(StreamName="alarmed", Records=[{"Data": b"a", "PartitionKey": "k"} for _ in range(20)])
        deadline = time.time() + 15
        while time.time() < deadline and not any(n["NewStateValue"] == "ALARM" for n in _Hook.received):
            time.sleep(0.1)
        alarm = [n for n in _Hook.received if n["NewStateValue"] == "ALARM"]
        assert alarm, f"no ALARM notification; got {_Hook.received}; log:\n{srv.log_tail()}"
        n = alarm[0]
        assert n["AlarmName"] == "too-many-records"
        assert n["Trigger"]["MetricName"] == "IncomingRecords" and n["Trigger"]["Threshold"] == 10
        assert "alarm state changed" in srv.log_tail()
    finally:
        srv.cleanup()
        hook.shutdown()
