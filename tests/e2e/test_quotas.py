"""Per-shard throughput quotas (`runnel serve --quotas aws|off|<multiplier>` and the
`runnel:quotas` stream tag): throttling starts at AWS's documented rates and not
below them.

Rates are measured from the client over several seconds, starting at the first
throttled record (when the one second of burst is spent), with tolerance for
request latency on a busy machine. Clients here never retry, so every
acknowledgement and every throttle comes from exactly one request.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import uuid

import pytest
from botocore.exceptions import ClientError

import kin

pytestmark = [pytest.mark.runnel_only, pytest.mark.kinesalite_diverges(reason="no throughput quotas")]

MIB = 1024 * 1024
QUOTA_TAG = "runnel:quotas"
MEASURE_S = 4.0
FLOOD_DEADLINE_S = 20.0  # bounds a flood that never gets throttled


@contextlib.contextmanager
def _server(quotas: str):
    srv = kin.RunnelProcess(extra_args=["--quotas", quotas]).start()
    try:
        yield srv
    finally:
        print(srv.log_tail())  # shown only if a test failed
        srv.cleanup()


@pytest.fixture(scope="module")
def aws_server():
    with _server("aws") as srv:
        yield srv


@pytest.fixture
def qc(aws_server):
    return kin.make_client(aws_server.endpoint, retry_throttling=False)


def _new_stream(client, shards: int = 1, **kw) -> str:
    name = f"q-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=shards, **kw)
    kin.wait_status(client, name)
    return name


def _rate_message(shard_id: str, name: str) -> str:
    return f"Rate exceeded for shard {shard_id} in stream {name} under account {kin.ACCOUNT}."


def _small(n: int) -> list[dict]:
    return [{"Data": b"0123456789", "PartitionKey": uuid.uuid4().hex[:8]} for _ in range(n)]


def _alternating(n: int) -> list[dict]:
    """Small records spread exactly evenly over the two halves of the hash space."""
    return [{"Data": b"0123456789", "PartitionKey": "k", "ExplicitHashKey": "0" if i % 2 else str(kin.HASH_KEY_MAX)}
            for i in range(n)]


def _big(n: int, record_bytes: int) -> list[dict]:
    # The quota counts data plus partition key, so each record is exactly record_bytes.
    return [{"Data": b"x" * (record_bytes - 8), "PartitionKey": uuid.uuid4().hex[:8]} for _ in range(n)]


def _entry_bytes(e: dict) -> int:
    return len(e["Data"]) + len(e["PartitionKey"].encode())


def _check_put_results(name: str, entries: list[dict], r: dict) -> tuple[list[dict], int]:
    """Checks the throttled entries of one PutRecords answer; returns (accepted
    entries, throttled count)."""
    failed = 0
    ok = []
    for e, res in zip(entries, r["Records"]):
        if "ErrorCode" in res:
            failed += 1
            assert res["ErrorCode"] == "ProvisionedThroughputExceededException", res
            assert res["ErrorMessage"] == _rate_message("shardId-000000000000", name), res
            assert "SequenceNumber" not in res and "ShardId" not in res, res
        else:
            kin.assert_seq(res["SequenceNumber"])
            ok.append(e)
    assert r["FailedRecordCount"] == failed
    return ok, failed


def _flood(client, name: str, make_entries, seconds: float = MEASURE_S) -> dict:
    """PutRecords back to back. Measures what was accepted from the first throttled
    record (burst spent) for `seconds`. Returns accepted records/s, bytes/s and the
    attempted rates over the same window."""
    started = time.monotonic()
    t0 = None
    acc_records = acc_bytes = att_records = att_bytes = 0
    while True:
        entries = make_entries()
        r = client.put_records(StreamName=name, Records=entries)
        now = time.monotonic()
        ok, failed = _check_put_results(name, entries, r)
        if t0 is None:
            if failed:
                t0 = now
        else:
            acc_records += len(ok)
            acc_bytes += sum(_entry_bytes(e) for e in ok)
            att_records += len(entries)
            att_bytes += sum(_entry_bytes(e) for e in entries)
            if now - t0 >= seconds:
                window = now - t0
                return {"records_per_s": acc_records / window, "bytes_per_s": acc_bytes / window,
                        "attempted_records_per_s": att_records / window,
                        "attempted_bytes_per_s": att_bytes / window}
        assert now - started < FLOOD_DEADLINE_S, "the producer was never throttled"


def _paced(client, name: str, make_entries, interval_s: float, seconds: float = MEASURE_S) -> tuple[int, int]:
    """One PutRecords every interval_s for `seconds`; returns (accepted, throttled)."""
    accepted = throttled = 0
    start = time.monotonic()
    k = 0
    while k * interval_s < seconds:
        due = start + k * interval_s
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the producer, not waiting for the server
        entries = make_entries()
        ok, failed = _check_put_results(name, entries, client.put_records(StreamName=name, Records=entries))
        accepted += len(ok)
        throttled += failed
        k += 1
    return accepted, throttled


# ---------------------------------------------------------------- writes

def test_records_per_second_throttled_at_1000(qc):
    name = _new_stream(qc)
    # The first second of burst is all accepted.
    for _ in range(2):
        assert qc.put_records(StreamName=name, Records=_small(500))["FailedRecordCount"] == 0
    m = _flood(qc, name, lambda: _small(500))
    assert m["attempted_records_per_s"] > 2000, f"producer too slow to test the quota: {m}"
    assert 800 <= m["records_per_s"] <= 1300, m


def test_half_the_record_rate_is_never_throttled(qc):
    name = _new_stream(qc)
    accepted, throttled = _paced(qc, name, lambda: _small(50), interval_s=0.1)  # 500 records/s
    assert throttled == 0
    assert accepted >= 1500


def test_bytes_per_second_throttled_at_1_mib(qc):
    name = _new_stream(qc)
    record = 100 * 1024
    # A full MiB at once is within the burst.
    assert qc.put_records(StreamName=name, Records=_big(10, record))["FailedRecordCount"] == 0
    m = _flood(qc, name, lambda: _big(10, record))
    assert m["attempted_bytes_per_s"] > 2 * MIB, f"producer too slow to test the quota: {m}"
    assert 0.8 * MIB <= m["bytes_per_s"] <= 1.3 * MIB, m
    assert m["records_per_s"] < 20  # bytes, not records, were the limit


def test_half_the_byte_rate_is_never_throttled(qc):
    name = _new_stream(qc)
    accepted, throttled = _paced(qc, name, lambda: _big(1, 100 * 1024), interval_s=0.2)  # 0.5 MiB/s
    assert throttled == 0
    assert accepted >= 15


def test_put_record_over_the_rate(qc):
    name = _new_stream(qc)
    one_mib = {"Data": b"x" * (MIB - 1), "PartitionKey": "k"}
    kin.assert_seq(qc.put_record(StreamName=name, **one_mib)["SequenceNumber"])
    kin.expect_error("ProvisionedThroughputExceededException", qc.put_record, StreamName=name, **one_mib,
                     message=_rate_message("shardId-000000000000", name))


def test_quota_is_per_shard(qc):
    # Two shards take twice the burst: 1000 records on each are all accepted.
    name = _new_stream(qc, shards=2)
    for _ in range(4):
        r = qc.put_records(StreamName=name, Records=_alternating(500))
        assert r["FailedRecordCount"] == 0, r["FailedRecordCount"]


def test_only_the_throttled_shards_records_fail(qc):
    name = _new_stream(qc, shards=2)
    lo, hi = "0", str(kin.HASH_KEY_MAX)  # shard 0 and shard 1
    # Spend shard 0's byte burst; it then earns 1 MiB/s, about 2 of the 500 KiB
    # records below per second.
    big = b"b" * (500 * 1024)
    start = time.monotonic()
    taken = 0
    for _ in range(2):
        drain = [{"Data": big, "PartitionKey": "k", "ExplicitHashKey": lo}] * 3
        taken += 3 - qc.put_records(StreamName=name, Records=drain)["FailedRecordCount"]
    mixed = [{"Data": big if i % 2 else b"small", "PartitionKey": "k", "ExplicitHashKey": lo if i % 2 else hi}
             for i in range(10)]
    r = qc.put_records(StreamName=name, Records=mixed)
    elapsed = time.monotonic() - start
    shard0_ok = 0
    for i, res in enumerate(r["Records"]):
        if i % 2 == 0:
            assert "ErrorCode" not in res and res["ShardId"] == "shardId-000000000001", res
        elif "ErrorCode" in res:
            assert res["ErrorCode"] == "ProvisionedThroughputExceededException", res
            assert res["ErrorMessage"] == _rate_message("shardId-000000000000", name)
        else:
            assert res["ShardId"] == "shardId-000000000000"
            shard0_ok += 1
    assert r["FailedRecordCount"] == 5 - shard0_ok
    # 11 records of 500 KiB offered to shard 0 in all; it can take 1 MiB plus what it earned.
    taken += shard0_ok
    assert taken >= 2
    assert taken * 500 <= 1024 * (1 + elapsed) + 1, f"shard 0 took {taken} x 500 KiB in {elapsed:.2f}s"
    assert r["FailedRecordCount"] > 0 or elapsed > 2


def test_new_shards_bring_their_own_capacity(qc):
    name = _new_stream(qc)
    qc.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    kin.wait_status(qc, name)
    # Two fresh children: two seconds' worth of one shard's burst.
    assert sum(qc.put_records(StreamName=name, Records=_alternating(500))["FailedRecordCount"] for _ in range(4)) == 0


# ---------------------------------------------------------------- reads

def test_sixth_get_records_within_a_second_is_throttled(qc):
    name = _new_stream(qc)
    qc.put_record(StreamName=name, Data=b"r", PartitionKey="k")
    it = kin.iterator(qc, name, "shardId-000000000000")
    start = time.monotonic()
    ok = 0
    throttled_it = None
    for _ in range(12):
        try:
            it = qc.get_records(ShardIterator=it)["NextShardIterator"]
            ok += 1
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException", e.response
            throttled_it = it
            break
    elapsed = time.monotonic() - start
    assert throttled_it is not None, f"{ok} GetRecords in {elapsed:.2f}s and none throttled"
    # 5 per second with one second of burst; a slow machine earns a little refill.
    assert 5 <= ok <= 5 + int(5 * elapsed), (ok, elapsed)
    # The iterator stays valid: the same call succeeds once the second has passed.
    _get_when_allowed(qc, throttled_it, deadline_s=5)


def _get_when_allowed(client, it: str, deadline_s: float, poll_s: float = 0.1,
                      **kw) -> tuple[dict, float]:
    """Retries one GetRecords until it is not throttled; returns (answer, seconds waited)."""
    start = time.monotonic()
    while True:
        try:
            return client.get_records(ShardIterator=it, **kw), time.monotonic() - start
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ProvisionedThroughputExceededException", e.response
            assert time.monotonic() - start < deadline_s, f"still throttled after {deadline_s}s"
        time.sleep(poll_s)


def test_big_read_throttles_the_shard_for_seconds(qc):
    # Fill 10 MiB without write quotas (the tag), then read it with read quotas on.
    name = _new_stream(qc, Tags={QUOTA_TAG: "off"})
    for i in range(10):
        qc.put_record(StreamName=name, Data=b"%d" % i * (MIB - 2), PartitionKey="kk")
    qc.remove_tags_from_stream(StreamName=name, TagKeys=[QUOTA_TAG])

    it = kin.iterator(qc, name, "shardId-000000000000")
    r = qc.get_records(ShardIterator=it)
    read_at = time.monotonic()
    got = sum(len(x["Data"]) for x in r["Records"])
    assert got >= 9 * MIB, f"first read returned {got} bytes"
    it = r["NextShardIterator"]
    kin.expect_error("ProvisionedThroughputExceededException", qc.get_records, ShardIterator=it)
    # About (read - 2 MiB) / 2 MiB/s of debt: 3.5 to 4 s for 9 to 10 MiB.
    r, _ = _get_when_allowed(qc, it, deadline_s=10, poll_s=0.25)
    waited = time.monotonic() - read_at
    assert 2.5 <= waited <= 7.0, f"throttled for {waited:.1f}s after a {got / MIB:.1f} MiB read"


def test_read_bytes_per_second_is_2_mib(qc):
    # 12 records of 1 MiB, read one per call as fast as the shard allows: after the
    # 2 MiB of burst, one more MiB every half second.
    name = _new_stream(qc, Tags={QUOTA_TAG: "off"})
    for i in range(12):
        qc.put_record(StreamName=name, Data=b"%d" % (i % 10) * (MIB - 2), PartitionKey="kk")
    qc.remove_tags_from_stream(StreamName=name, TagKeys=[QUOTA_TAG])
    it = kin.iterator(qc, name, "shardId-000000000000")
    times = []
    for _ in range(12):
        r, _ = _get_when_allowed(qc, it, deadline_s=5, poll_s=0.02, Limit=1)
        assert len(r["Records"]) == 1, len(r["Records"])
        times.append(time.monotonic())
        it = r["NextShardIterator"]
    # Reads 3..12 are spaced by the refill: 9 MiB at 2 MiB/s.
    rate = 9 / (times[-1] - times[2])
    assert 1.6 <= rate <= 2.6, f"{rate:.2f} MiB/s read after the burst"


# ---------------------------------------------------------------- settings per server and per stream

def _burst(client, name: str, batches: int) -> tuple[int, float]:
    """Sends `batches` PutRecords of 500 small records back to back; returns
    (accepted, seconds from the first request to the last answer)."""
    start = time.monotonic()
    accepted = sum(500 - client.put_records(StreamName=name, Records=_small(500))["FailedRecordCount"]
                   for _ in range(batches))
    return accepted, time.monotonic() - start


def _assert_at_most(accepted: int, rate: float, elapsed: float) -> None:
    # One second of burst plus what the bucket earned while the requests ran.
    assert accepted <= rate * (1 + elapsed) + 5, f"{accepted} records accepted in {elapsed:.2f}s at {rate}/s"


def test_tag_off_lifts_quotas_for_one_stream(qc):
    free = _new_stream(qc, Tags={QUOTA_TAG: "off"})
    limited = _new_stream(qc)
    assert _burst(qc, free, 8)[0] == 4000
    accepted, elapsed = _burst(qc, limited, 8)
    _assert_at_most(accepted, 1000, elapsed)
    # Reads too: 20 GetRecords in a row.
    it = kin.iterator(qc, free, "shardId-000000000000")
    for _ in range(20):
        it = qc.get_records(ShardIterator=it, Limit=1)["NextShardIterator"]


def test_tag_multiplier_for_one_stream(qc):
    name = _new_stream(qc, Tags={QUOTA_TAG: "0.5"})
    start = time.monotonic()
    assert qc.put_records(StreamName=name, Records=_small(500))["FailedRecordCount"] == 0  # half the burst
    accepted, _ = _burst(qc, name, 4)
    _assert_at_most(500 + accepted, 500, time.monotonic() - start)


def test_tag_aws_turns_quotas_on_for_one_stream(endpoint, make_stream, kinesis):
    # The shared server runs --quotas off; the tag on an existing stream takes effect.
    c = kin.make_client(endpoint, retry_throttling=False)
    name = make_stream(1)
    assert _burst(c, name, 6)[0] == 3000
    kinesis.add_tags_to_stream(StreamName=name, Tags={QUOTA_TAG: "aws"})
    accepted, elapsed = _burst(c, name, 6)
    _assert_at_most(accepted, 1000, elapsed)


def test_multiplier_doubles_the_rates():
    with _server("2") as srv:
        c = kin.make_client(srv.endpoint, retry_throttling=False)
        name = _new_stream(c)
        for _ in range(4):  # two seconds' worth of AWS burst is now one second's
            assert c.put_records(StreamName=name, Records=_small(500))["FailedRecordCount"] == 0
        m = _flood(c, name, lambda: _small(500))
        assert m["attempted_records_per_s"] > 4000, f"producer too slow to test the quota: {m}"
        assert 1600 <= m["records_per_s"] <= 2600, m


# ---------------------------------------------------------------- runnel bench

def _bench_put(endpoint: str, *args: str) -> dict:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    cmd = [str(kin.runnel_bin()), "bench", "--endpoint-url", endpoint, "--output", "json",
           "put", "--stream", name, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"{cmd}: exit {p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}"
    # bench deletes the stream it created; wait until it is gone so that later
    # tests counting the account's open shards start from a settled account.
    kin.wait_gone(kin.make_client(endpoint), name)
    return json.loads(p.stdout)


def test_bench_put_reports_throttling(aws_server):
    out = _bench_put(aws_server.endpoint, "--shards", "1", "--duration", "3")
    put = out["put"]
    assert put["throttled"] > 0, put
    assert put["records"] > 0 and put["request_errors"] == 0, put
    # One shard accepts its burst plus 1000 records per second, and not much less.
    elapsed = put["elapsed_s"]
    assert 0.7 * 1000 * elapsed <= put["records"] <= 1.15 * 1000 * (elapsed + 1), put


def test_bench_put_without_quotas_is_not_throttled(endpoint):
    out = _bench_put(endpoint, "--shards", "1", "--duration", "1")
    assert out["put"]["throttled"] == 0, out["put"]
    assert out["put"]["records"] > 0
