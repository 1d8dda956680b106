"""Helpers shared by the end-to-end tests: server processes, clients, polling, assertions.

Everything here talks to the server through public interfaces only (HTTP, the
binary's command line, the data directory on disk), so the same tests can be
pointed at a reference implementation with RUNNEL_E2E_ENDPOINT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "000000000000"
TARGET_PREFIX = "Kinesis_20131202."
JSON_CT = "application/x-amz-json-1.1"
CBOR_CT = "application/x-amz-cbor-1.1"
HASH_KEY_MAX = 2**128 - 1
SEQ_RE = re.compile(r"0|[1-9][0-9]*")

REPO_ROOT = Path(__file__).resolve().parents[2]
# False when the suite runs against an external endpoint (a reference such as kinesalite).
AGAINST_RUNNEL = not os.environ.get("RUNNEL_E2E_ENDPOINT")

# Upper bounds for polling loops. They bound how long a broken server can hang
# a test; no assertion depends on how fast anything happens.
STARTUP_TIMEOUT_S = 60.0
STATUS_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.02


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def not_found_message(name: str) -> str:
    return f"Stream {name} under account {ACCOUNT} not found."


def in_use_message(name: str) -> str:
    return f"Stream {name} under account {ACCOUNT} already exists."


def runnel_bin() -> Path:
    path = Path(os.environ.get("RUNNEL_BIN", REPO_ROOT / "target" / "release" / "runnel"))
    if not path.is_file():
        pytest.fail(
            f"runnel binary not found at {path}: run `cargo build --release -p runnel` "
            "or set RUNNEL_BIN (or RUNNEL_E2E_ENDPOINT to test a running server)",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunnelProcess:
    """One `runnel serve` process on a free port with its own data dir."""

    def __init__(self, data_dir: Path | None = None, extra_args: list[str] | None = None,
                 transition_ms: int = 50):
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="runnel-e2e-"))
        self.extra_args = list(extra_args or [])
        self.transition_ms = transition_ms
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="runnel-e2e-", suffix=".log")[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RunnelProcess":
        last_error = None
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            args = [
                str(runnel_bin()), "serve",
                "--addr", f"127.0.0.1:{self.port}",
                "--data-dir", str(self.data_dir),
                "--stream-transition-ms", str(self.transition_ms),
                "--test-clock",
                # Bulk tests are not about throttling; quota tests pass --quotas aws.
                "--quotas", "off",
                *self.extra_args,
            ]
            log = open(self.log_path, "ab")
            log.write(("\n$ " + " ".join(args) + "\n").encode())
            log.flush()
            env = {**os.environ, "NO_COLOR": "1"}
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
            log.close()
            try:
                wait_healthy(self.endpoint, self.proc)
                return self
            except RuntimeError as e:
                last_error = e
                self.kill()
        raise RuntimeError(f"runnel did not start: {last_error}\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop (SIGTERM), falling back to SIGKILL."""
        self.kill(signal.SIGTERM)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n_bytes: int = 20000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-n_bytes:].decode("utf-8", "replace")

    def cleanup(self) -> None:
        self.kill()
        if self._own_dir:
            subprocess.run(["rm", "-rf", str(self.data_dir)], check=False)
        self.log_path.unlink(missing_ok=True)


def wait_healthy(endpoint: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(endpoint + "/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"{endpoint}/ready not ready after {STARTUP_TIMEOUT_S}s: {last}")


def wait_reachable(endpoint: str) -> None:
    """For an external endpoint (which may have no /health): any HTTP answer counts."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            raw_call(endpoint, "ListStreams", {})
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(POLL_INTERVAL_S)


def make_client(endpoint: str, validate: bool = True, retry_throttling: bool = True):
    """boto3 client. With retry_throttling, botocore's standard retry mode retries
    ProvisionedThroughputExceededException (runnel enforces per-shard rates as AWS
    does) with its usual backoff; the crash test turns retries off so every
    acknowledgement it counts comes from exactly one request."""
    retries = {"mode": "standard", "total_max_attempts": 12} if retry_throttling else {"total_max_attempts": 1}
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(
            retries=retries,
            parameter_validation=validate,
            connect_timeout=10,
            read_timeout=60,
        ),
    )


# ---------------------------------------------------------------- raw HTTP

def _auth_headers() -> dict:
    # A well-formed SigV4 header: runnel parses but does not enforce it; kinesalite
    # insists that one is present.
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return {
        "X-Amz-Date": amz_date,
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{amz_date[:8]}/{REGION}/kinesis/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
        ),
    }


def raw_request(endpoint: str, target: str | None, body: bytes, content_type: str = JSON_CT,
                timeout: float = 60):
    """POST one request; returns (status, headers, body bytes)."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = {"Content-Type": content_type, **_auth_headers()}
    if target is not None:
        headers["X-Amz-Target"] = target if "." in target else TARGET_PREFIX + target
    try:
        conn.request("POST", "/", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw_call(endpoint: str, op: str, payload: dict):
    status, headers, body = raw_request(endpoint, op, json.dumps(payload).encode())
    return status, (json.loads(body) if body else {})


def error_type(body: dict) -> str:
    """`__type` may carry a namespace prefix ("com.amazon.coral.service#X")."""
    return str(body.get("__type", "")).rsplit("#", 1)[-1]


# ---------------------------------------------------------------- polling

def wait_status(client, name: str, want: str = "ACTIVE") -> dict:
    deadline = time.monotonic() + STATUS_TIMEOUT_S
    while True:
        summary = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == want:
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} stuck in {summary['StreamStatus']}, wanted {want}")
        time.sleep(POLL_INTERVAL_S)


def wait_gone(client, name: str) -> None:
    deadline = time.monotonic() + STATUS_TIMEOUT_S
    while True:
        try:
            client.describe_stream_summary(StreamName=name)
        except ClientError as e:
            if e.response["Error"]["Code"] == "ResourceNotFoundException":
                return
            raise
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} not deleted after {STATUS_TIMEOUT_S}s")
        time.sleep(POLL_INTERVAL_S)


# ---------------------------------------------------------------- streams and records

def md5_hash_key(partition_key: str) -> int:
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def list_all_shards(client, name: str) -> list[dict]:
    return client.describe_stream(StreamName=name)["StreamDescription"]["Shards"]


def shard_for_hash(shards: list[dict], h: int) -> str:
    matches = [s["ShardId"] for s in shards
               if int(s["HashKeyRange"]["StartingHashKey"]) <= h <= int(s["HashKeyRange"]["EndingHashKey"])]
    assert len(matches) == 1, f"hash {h} covered by {matches}"
    return matches[0]


def iterator(client, name: str, shard_id: str, kind: str = "TRIM_HORIZON", **kw) -> str:
    return client.get_shard_iterator(StreamName=name, ShardId=shard_id,
                                     ShardIteratorType=kind, **kw)["ShardIterator"]


def drain(client, it: str, limit: int | None = None, max_calls: int = 1000) -> list[dict]:
    """Follow NextShardIterator until a call returns nothing and is at the tip."""
    out: list[dict] = []
    for _ in range(max_calls):
        kw = {"Limit": limit} if limit else {}
        r = client.get_records(ShardIterator=it, **kw)
        out.extend(r["Records"])
        it = r.get("NextShardIterator")
        if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return out
        if it is None:  # closed shard, fully read
            return out
    raise AssertionError(f"shard not drained after {max_calls} GetRecords calls")


def read_shard(client, name: str, shard_id: str, kind: str = "TRIM_HORIZON", **kw) -> list[dict]:
    return drain(client, iterator(client, name, shard_id, kind, **kw))


def assert_seq(seq: str) -> int:
    assert isinstance(seq, str) and SEQ_RE.fullmatch(seq), f"bad sequence number {seq!r}"
    return int(seq)


def assert_increasing(seqs: list[str]) -> None:
    ints = [assert_seq(s) for s in seqs]
    assert all(a < b for a, b in zip(ints, ints[1:])), f"not strictly increasing: {seqs}"


def client_error(excinfo) -> tuple[str, str]:
    err = excinfo.value.response["Error"]
    return err.get("Code", ""), err.get("Message", "")


def expect_error(code: str, fn, *args, message: str | None = None,
                 contains: tuple[str, ...] = (), **kwargs) -> str:
    """Call fn, require a ClientError with `code`; optionally exact `message`
    or case-insensitive substrings. Returns the message."""
    with pytest.raises(ClientError) as excinfo:
        fn(*args, **kwargs)
    got_code, got_msg = client_error(excinfo)
    assert got_code == code, f"expected {code}, got {got_code}: {got_msg}"
    if message is not None:
        assert got_msg == message
    for s in contains:
        assert s.lower() in got_msg.lower(), f"{s!r} not in error message {got_msg!r}"
    return got_msg


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def put_all(client, name: str, entries: list[dict], attempts: int = 60) -> list[dict]:
    """PutRecords, resending the entries the server throttled, until all are in.
    Returns the per-entry results in the order of `entries`."""
    results: list[dict | None] = [None] * len(entries)
    pending = list(range(len(entries)))
    for _ in range(attempts):
        r = client.put_records(StreamName=name, Records=[entries[i] for i in pending])
        retry = []
        for i, res in zip(pending, r["Records"]):
            if "ErrorCode" in res:
                assert res["ErrorCode"] == "ProvisionedThroughputExceededException", res
                retry.append(i)
            else:
                results[i] = res
        pending = retry
        if not pending:
            return results  # type: ignore[return-value]
        time.sleep(0.25)  # back off before resending throttled records (not a timing assertion)
    raise AssertionError(f"{len(pending)} records still throttled after {attempts} attempts")


# ---------------------------------------------------------------- resharding and lineage

def even_split(n: int) -> list[tuple[int, int]]:
    """The hash ranges of a new stream with n shards (AWS: starts at i * floor(2^128 / n))."""
    step = (HASH_KEY_MAX + 1) // n
    starts = [i * step for i in range(n)]
    return [(s, (starts[i + 1] - 1) if i + 1 < n else HASH_KEY_MAX) for i, s in enumerate(starts)]


def hash_range(shard: dict) -> tuple[int, int]:
    r = shard["HashKeyRange"]
    return int(r["StartingHashKey"]), int(r["EndingHashKey"])


def is_closed(shard: dict) -> bool:
    return "EndingSequenceNumber" in shard["SequenceNumberRange"]


def parents_of(shard: dict) -> list[str]:
    return [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]


def list_shards_all(client, name: str, **kw) -> list[dict]:
    """ListShards, following NextToken."""
    r = client.list_shards(StreamName=name, **kw)
    shards = list(r["Shards"])
    while r.get("NextToken"):
        r = client.list_shards(NextToken=r["NextToken"])
        shards.extend(r["Shards"])
    return shards


def open_ranges(client, name: str) -> list[tuple[int, int]]:
    return sorted(hash_range(s) for s in list_shards_all(client, name, ShardFilter={"Type": "AT_LATEST"}))


def assert_shard_map(shards: list[dict]) -> None:
    """The invariants of a shard map: ids unique; every shard open or closed; every
    parent a child names (and that is still listed) is closed; the open shards tile
    [0, 2^128 - 1] without gaps or overlaps."""
    ids = [s["ShardId"] for s in shards]
    assert len(ids) == len(set(ids)), f"duplicate shard ids: {ids}"
    by_id = {s["ShardId"]: s for s in shards}
    for s in shards:
        start, end = hash_range(s)
        assert 0 <= start <= end <= HASH_KEY_MAX, s
        for p in parents_of(s):
            if p in by_id:
                assert is_closed(by_id[p]), f"{s['ShardId']} names open parent {p}"
    expect = 0
    for start, end in sorted(hash_range(s) for s in shards if not is_closed(s)):
        assert start == expect, f"open shards leave a gap or overlap at {expect} (next starts {start})"
        expect = end + 1
    assert expect == HASH_KEY_MAX + 1, f"open shards stop at {expect - 1}"


def read_to_end(client, name: str, shard: dict, limit: int | None = None,
                max_calls: int = 2000) -> tuple[list[dict], list[dict] | None]:
    """All records of a shard from TRIM_HORIZON. A closed shard is read until
    NextShardIterator is absent and its ChildShards are returned; an open shard
    until a call returns nothing at the tip (ChildShards None)."""
    it = iterator(client, name, shard["ShardId"])
    closed = is_closed(shard)
    out: list[dict] = []
    for _ in range(max_calls):
        r = client.get_records(ShardIterator=it, **({"Limit": limit} if limit else {}))
        out.extend(r["Records"])
        nxt = r.get("NextShardIterator")
        if nxt is None:
            assert closed, f"open shard {shard['ShardId']} returned no NextShardIterator"
            return out, r.get("ChildShards", [])
        assert not r.get("ChildShards"), f"ChildShards before the end of {shard['ShardId']}: {r['ChildShards']}"
        if not closed and not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return out, None
        it = nxt
    raise AssertionError(f"{shard['ShardId']} not read to the end after {max_calls} GetRecords calls")


def walk_lineage(client, name: str, limit: int | None = None):
    """Reads every listed shard, parents before children, and checks each closed
    shard's ChildShards against the listing. Returns (shard ids in reading order,
    {shard id: records}, the listing)."""
    shards = list_shards_all(client, name)
    assert_shard_map(shards)
    by_id = {s["ShardId"]: s for s in shards}
    listed_parents = {sid: [p for p in parents_of(s) if p in by_id] for sid, s in by_id.items()}
    children: dict[str, list[str]] = {sid: [] for sid in by_id}
    for sid, ps in listed_parents.items():
        for p in ps:
            children[p].append(sid)
    order: list[str] = []
    records: dict[str, list[dict]] = {}
    pending = sorted(by_id)
    while pending:
        ready = [sid for sid in pending if all(p in records for p in listed_parents[sid])]
        assert ready, f"lineage has a cycle or a missing parent among {pending}"
        for sid in ready:
            recs, child_shards = read_to_end(client, name, by_id[sid], limit)
            assert_increasing([r["SequenceNumber"] for r in recs])
            if child_shards is not None:
                got = sorted(c["ShardId"] for c in child_shards)
                assert got == sorted(children[sid]), f"ChildShards of {sid}: {got}, listing says {children[sid]}"
                for c in child_shards:
                    child = by_id[c["ShardId"]]
                    assert sorted(c["ParentShards"]) == sorted(parents_of(child)), (c, child)
                    assert c["HashKeyRange"] == child["HashKeyRange"], (c, child)
            records[sid] = recs
            order.append(sid)
        pending = [sid for sid in pending if sid not in records]
    return order, records, shards


def settled_limits(client) -> dict:
    """DescribeLimits once no stream of the account is DELETING (a stream another
    test deleted without waiting still counts its shards until it is gone)."""
    deadline = time.monotonic() + STATUS_TIMEOUT_S
    while True:
        summaries, kw = [], {}
        while True:
            r = client.list_streams(**kw)
            summaries.extend(r.get("StreamSummaries", []))
            if not r.get("HasMoreStreams") or not r.get("NextToken"):
                break
            kw = {"NextToken": r["NextToken"]}
        if not any(s["StreamStatus"] == "DELETING" for s in summaries):
            return client.describe_limits()
        if time.monotonic() > deadline:
            raise AssertionError(f"streams still DELETING after {STATUS_TIMEOUT_S}s")
        time.sleep(POLL_INTERVAL_S)
