"""On-demand capacity: ON_DEMAND streams, scaling under load generated here,
UpdateStreamMode, UpdateMaxRecordSize, account settings and warm throughput.

Scaling tests run their own server with a short `--on-demand-scale-check-ms`, so
decisions that take minutes on AWS happen within seconds; they poll with deadlines.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from botocore.exceptions import BotoCoreError, ClientError

import kin

pytestmark = pytest.mark.kinesalite_diverges(reason="no on-demand mode, UpdateStreamMode, warm throughput")

MIB = 1024 * 1024
ON_DEMAND = {"StreamMode": "ON_DEMAND"}
PROVISIONED = {"StreamMode": "PROVISIONED"}
SCALE_DEADLINE_S = 20.0


def _summary(client, name: str) -> dict:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def _open_count(client, name: str) -> int:
    return len(kin.list_shards_all(client, name, ShardFilter={"Type": "AT_LATEST"}))


def _wait_open_count(client, name: str, pred, what: str, deadline_s: float = SCALE_DEADLINE_S) -> int:
    deadline = time.monotonic() + deadline_s
    while True:
        n = _open_count(client, name)
        if pred(n):
            return n
        assert time.monotonic() < deadline, f"{what}: still {n} open shards after {deadline_s}s"
        time.sleep(0.05)


# ---------------------------------------------------------------- on the shared server

def test_on_demand_stream_starts_with_four_even_shards(kinesis, make_stream):
    before = kin.settled_limits(kinesis)
    name = make_stream(None, StreamModeDetails=ON_DEMAND)
    s = _summary(kinesis, name)
    assert s["StreamModeDetails"] == ON_DEMAND
    assert s["OpenShardCount"] == 4
    assert kin.open_ranges(kinesis, name) == kin.even_split(4)
    after = kinesis.describe_limits()
    assert after["OnDemandStreamCount"] == before["OnDemandStreamCount"] + 1
    assert after["OpenShardCount"] == before["OpenShardCount"] + 4
    assert after["OnDemandStreamCountLimit"] >= 1


def test_resharding_an_on_demand_stream_is_rejected(kinesis, make_stream):
    name = make_stream(None, StreamModeDetails=ON_DEMAND)
    kin.expect_error("InvalidArgumentException", kinesis.split_shard, StreamName=name,
                     ShardToSplit="shardId-000000000000", NewStartingHashKey="5", contains=("ON_DEMAND",))
    kin.expect_error("InvalidArgumentException", kinesis.merge_shards, StreamName=name,
                     ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001",
                     contains=("ON_DEMAND",))
    kin.expect_error("InvalidArgumentException", kinesis.update_shard_count, StreamName=name,
                     TargetShardCount=8, ScalingType="UNIFORM_SCALING", contains=("ON_DEMAND",))
    assert kin.open_ranges(kinesis, name) == kin.even_split(4)


def test_update_stream_mode_round_trip(kinesis, make_stream):
    name = make_stream(2)
    arn = kin.stream_arn(name)
    base = kin.settled_limits(kinesis)["OnDemandStreamCount"]
    kin.expect_error("InvalidArgumentException", kinesis.update_stream_mode, StreamARN=arn,
                     StreamModeDetails=PROVISIONED, contains=("PROVISIONED",))

    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails=ON_DEMAND)
    assert kin.wait_status(kinesis, name, "ACTIVE")["StreamModeDetails"] == ON_DEMAND
    assert kinesis.describe_limits()["OnDemandStreamCount"] == base + 1
    kin.expect_error("InvalidArgumentException", kinesis.update_stream_mode, StreamARN=arn,
                     StreamModeDetails=ON_DEMAND, contains=("ON_DEMAND",))
    kin.expect_error("InvalidArgumentException", kinesis.split_shard, StreamName=name,
                     ShardToSplit="shardId-000000000000", NewStartingHashKey="5")
    r = kinesis.put_record(StreamName=name, Data=b"x", PartitionKey="k")
    kin.assert_seq(r["SequenceNumber"])

    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails=PROVISIONED)
    assert kin.wait_status(kinesis, name, "ACTIVE")["StreamModeDetails"] == PROVISIONED
    assert kinesis.describe_limits()["OnDemandStreamCount"] == base
    open_ids = [s["ShardId"] for s in kin.list_shards_all(kinesis, name, ShardFilter={"Type": "AT_LATEST"})]
    start, end = kin.hash_range(kin.list_shards_all(kinesis, name, ShardFilter={"Type": "AT_LATEST"})[0])
    kinesis.split_shard(StreamName=name, ShardToSplit=open_ids[0], NewStartingHashKey=str(start + (end - start) // 2))
    kin.wait_status(kinesis, name, "ACTIVE")
    kin.assert_shard_map(kin.list_shards_all(kinesis, name))


def test_update_stream_mode_errors(kinesis_nv, stream_name):
    kin.expect_error("ResourceNotFoundException", kinesis_nv.update_stream_mode,
                     StreamARN=kin.stream_arn(stream_name), StreamModeDetails=ON_DEMAND)
    with pytest.raises(ClientError) as excinfo:
        kinesis_nv.update_stream_mode(StreamARN=kin.stream_arn(stream_name), StreamModeDetails={"StreamMode": "FAST"})
    assert kin.client_error(excinfo)[0] in ("ValidationException", "InvalidArgumentException")


def test_update_max_record_size_allows_bigger_records(kinesis, make_stream):
    name = make_stream(1)
    arn = kin.stream_arn(name)
    two_mib = b"y" * (2 * MIB)
    assert _summary(kinesis, name)["MaxRecordSizeInKiB"] == 1024
    kin.expect_error("ValidationException", kinesis.put_record, StreamName=name, Data=two_mib, PartitionKey="k")
    kinesis.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=4096)
    assert _summary(kinesis, name)["MaxRecordSizeInKiB"] == 4096
    r = kinesis.put_record(StreamName=name, Data=two_mib, PartitionKey="k")
    got = kin.read_shard(kinesis, name, "shardId-000000000000")
    assert [(x["SequenceNumber"], x["Data"]) for x in got] == [(r["SequenceNumber"], two_mib)]
    # Still bounded by the new size.
    r = kinesis.put_records(StreamName=name, Records=[{"Data": b"z" * (4 * MIB), "PartitionKey": "k"}])
    assert r["FailedRecordCount"] == 0
    kin.expect_error("ValidationException", kinesis.put_record, StreamName=name,
                     Data=b"z" * (5 * MIB), PartitionKey="k")


@pytest.mark.parametrize("size", [1023, 10241])
def test_update_max_record_size_range(kinesis_nv, stream, size):
    kin.expect_error("ValidationException", kinesis_nv.update_max_record_size,
                     StreamARN=kin.stream_arn(stream), MaxRecordSizeInKiB=size, contains=("maxRecordSizeInKiB",))


# ---------------------------------------------------------------- own servers

@pytest.fixture
def own_server():
    """factory(*extra_args) -> a started RunnelProcess, cleaned up after the test."""
    started: list[kin.RunnelProcess] = []

    def start(*extra: str) -> kin.RunnelProcess:
        srv = kin.RunnelProcess(extra_args=list(extra)).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        print(srv.log_tail())  # shown only if the test failed
        srv.cleanup()


@pytest.mark.runnel_only
def test_large_record_is_accepted_with_quotas_on(own_server):
    # AWS: "To accommodate large records, Kinesis data streams can burst up to 10 MiBs,
    # while averaging 1 MiB per second" -- an idle shard takes one large record.
    srv = own_server("--quotas", "aws")
    c = kin.make_client(srv.endpoint, retry_throttling=False)
    c.create_stream(StreamName="big", ShardCount=1)
    kin.wait_status(c, "big")
    c.update_max_record_size(StreamARN=kin.stream_arn("big"), MaxRecordSizeInKiB=10240)
    deadline = time.monotonic() + 5
    while True:
        try:
            r = c.put_record(StreamName="big", Data=b"L" * (2 * MIB), PartitionKey="k")
            break
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException", e.response
            assert time.monotonic() < deadline, "a 2 MiB record on an idle shard is throttled for good"
            time.sleep(0.5)
    kin.assert_seq(r["SequenceNumber"])



@pytest.mark.runnel_only
def test_warm_throughput_needs_commitment_and_scales_up_at_once(own_server):
    srv = own_server()
    c = kin.make_client(srv.endpoint, retry_throttling=False)
    assert c.describe_account_settings()["MinimumThroughputBillingCommitment"]["Status"] == "DISABLED"
    c.create_stream(StreamName="od", StreamModeDetails=ON_DEMAND)
    c.create_stream(StreamName="prov", ShardCount=1)
    kin.wait_status(c, "od")
    kin.wait_status(c, "prov")
    kin.expect_error("InvalidArgumentException", c.update_stream_warm_throughput, StreamName="od",
                     WarmThroughputMiBps=8, contains=("MinimumThroughputBillingCommitment",))

    r = c.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    assert r["MinimumThroughputBillingCommitment"]["Status"] == "ENABLED"
    got = c.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert got["Status"] == "ENABLED" and "StartedAt" in got
    kin.expect_error("InvalidArgumentException", c.update_stream_warm_throughput, StreamName="prov",
                     WarmThroughputMiBps=8)

    r = c.update_stream_warm_throughput(StreamName="od", WarmThroughputMiBps=6)
    assert r["StreamName"] == "od" and r["StreamARN"] == kin.stream_arn("od")
    assert r["WarmThroughput"] == {"TargetMiBps": 6, "CurrentMiBps": 6}
    s = kin.wait_status(c, "od")
    assert s["OpenShardCount"] == 6
    assert s["WarmThroughput"] == {"TargetMiBps": 6, "CurrentMiBps": 6}
    kin.assert_shard_map(kin.list_shards_all(c, "od"))

    # At most doubling at once.
    r = c.update_stream_warm_throughput(StreamName="od", WarmThroughputMiBps=100)
    assert r["WarmThroughput"] == {"TargetMiBps": 100, "CurrentMiBps": 12}
    s = kin.wait_status(c, "od")
    assert s["OpenShardCount"] == 12
    assert s["WarmThroughput"] == {"TargetMiBps": 100, "CurrentMiBps": 12}
    kin.assert_shard_map(kin.list_shards_all(c, "od"))
    assert c.describe_limits()["OpenShardCount"] == 13

    r = c.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"})
    assert r["MinimumThroughputBillingCommitment"]["Status"] == "DISABLED"


class _Producer:
    """Writes big records under many partition keys as fast as it can (retries off:
    throttled records are dropped, they still count as demand)."""

    def __init__(self, endpoint: str, name: str, record_bytes: int = 256 * 1024, batch: int = 12):
        self.client = kin.make_client(endpoint, retry_throttling=False)
        self.name = name
        self.data = b"d" * record_bytes
        self.batch = batch
        self.sent_bytes = 0
        self.accepted = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            entries = [{"Data": self.data, "PartitionKey": uuid.uuid4().hex} for _ in range(self.batch)]
            try:
                r = self.client.put_records(StreamName=self.name, Records=entries)
            except (BotoCoreError, ClientError, OSError) as e:
                self.errors.append(str(e))
                return
            self.sent_bytes += len(entries) * len(self.data)
            self.accepted += len(entries) - r["FailedRecordCount"]

    def __enter__(self) -> "_Producer":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()

    def rate(self) -> float:
        return self.sent_bytes / max(time.monotonic() - self.started, 1e-9)


@pytest.mark.runnel_only
def test_on_demand_scales_up_under_sustained_load(own_server):
    srv = own_server("--on-demand-scale-check-ms", "1000", "--quotas", "aws")
    c = kin.make_client(srv.endpoint, retry_throttling=False)
    c.create_stream(StreamName="hot", StreamModeDetails=ON_DEMAND)
    kin.wait_status(c, "hot")
    assert _open_count(c, "hot") == 4
    with _Producer(srv.endpoint, "hot") as p:
        n = _wait_open_count(c, "hot", lambda n: n > 4, "on-demand scale up")
        rate = p.rate()
    assert not p.errors, p.errors[:3]
    assert rate > 2 * MIB, f"the producer only managed {rate / MIB:.1f} MiB/s"
    assert n <= 8  # at most doubling per check
    s = kin.wait_status(c, "hot")
    assert s["StreamModeDetails"] == ON_DEMAND
    shards = kin.list_shards_all(c, "hot")
    kin.assert_shard_map(shards)
    # New shards come from splits of the original four.
    for sh in shards:
        if not kin.is_closed(sh) and "ParentShardId" in sh:
            assert "AdjacentParentShardId" not in sh
    assert c.describe_limits()["OpenShardCount"] == _open_count(c, "hot")


@pytest.mark.runnel_only
def test_on_demand_scales_back_down_when_quiet_but_never_below_four(own_server):
    # Warm throughput scales up without load; dropping it leaves the extra shards
    # idle, and every 10 quiet checks one adjacent pair is merged, down to 4.
    srv = own_server("--on-demand-scale-check-ms", "100")
    c = kin.make_client(srv.endpoint, retry_throttling=False)
    c.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"})
    c.create_stream(StreamName="cool", StreamModeDetails=ON_DEMAND)
    kin.wait_status(c, "cool")
    c.update_stream_warm_throughput(StreamName="cool", WarmThroughputMiBps=6)
    kin.wait_status(c, "cool")
    assert _open_count(c, "cool") == 6
    c.update_stream_warm_throughput(StreamName="cool", WarmThroughputMiBps=0)
    seen = [6]
    deadline = time.monotonic() + SCALE_DEADLINE_S
    while seen[-1] > 4:
        assert time.monotonic() < deadline, f"open shard counts seen: {seen}"
        n = _open_count(c, "cool")
        if n != seen[-1]:
            seen.append(n)
        time.sleep(0.05)
    assert seen == [6, 5, 4], f"scale-down should merge one pair at a time: {seen}"
    # Thirty more quiet checks: still 4.
    settle = time.monotonic() + 3.0
    while time.monotonic() < settle:
        assert _open_count(c, "cool") == 4
        time.sleep(0.1)
    shards = kin.list_shards_all(c, "cool")
    kin.assert_shard_map(shards)
    merged = [s for s in shards if "AdjacentParentShardId" in s]
    assert len(merged) == 2


@pytest.mark.runnel_only
def test_capacity_settings_survive_kill_9(own_server):
    srv = own_server()
    c = kin.make_client(srv.endpoint, retry_throttling=False)
    c.create_stream(StreamName="keep", ShardCount=2)
    kin.wait_status(c, "keep")
    arn = kin.stream_arn("keep")
    c.update_max_record_size(StreamARN=arn, MaxRecordSizeInKiB=2048)
    c.update_stream_mode(StreamARN=arn, StreamModeDetails=ON_DEMAND)
    kin.wait_status(c, "keep")
    started_at = c.update_account_settings(
        MinimumThroughputBillingCommitment={"Status": "ENABLED"})["MinimumThroughputBillingCommitment"]["StartedAt"]
    c.update_stream_warm_throughput(StreamName="keep", WarmThroughputMiBps=3)
    before = kin.wait_status(c, "keep")
    ranges = kin.open_ranges(c, "keep")
    srv.kill()

    srv.start()
    c = kin.make_client(srv.endpoint, retry_throttling=False)
    s = kin.wait_status(c, "keep")
    assert s["StreamModeDetails"] == ON_DEMAND
    assert s["MaxRecordSizeInKiB"] == 2048
    assert s["OpenShardCount"] == before["OpenShardCount"]
    assert s["WarmThroughput"]["TargetMiBps"] == 3
    assert kin.open_ranges(c, "keep") == ranges
    got = c.describe_account_settings()["MinimumThroughputBillingCommitment"]
    assert got == {"Status": "ENABLED", "StartedAt": started_at}
    limits = c.describe_limits()
    assert limits["OnDemandStreamCount"] == 1 and limits["OpenShardCount"] == s["OpenShardCount"]
    kin.assert_seq(c.put_record(StreamName="keep", Data=b"2" * (2 * MIB), PartitionKey="k")["SequenceNumber"])
