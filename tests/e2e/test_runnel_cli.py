"""The `runnel` operator CLI (stream, put, tail) against a real server.

Every command runs the real binary; assertions use `--output json` and are
cross-checked with boto3.
"""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import subprocess
import time
from collections import defaultdict

import pytest

import kin

CLI_TIMEOUT_S = 60


def cli(endpoint: str, *args: str, input: str | None = None, check: bool = True,
        timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNNEL_"))}
    env.update(RUNNEL_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
               AWS_SECRET_ACCESS_KEY="secret", AWS_REGION="us-east-1", NO_COLOR="1")
    p = subprocess.run([str(kin.runnel_bin()), *args], env=env, input=input, capture_output=True,
                       text=True, timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, f"runnel {' '.join(args)}: rc={p.returncode}\n{p.stderr}"
    return p


def cli_json(endpoint: str, *args: str, **kw):
    return json.loads(cli(endpoint, *args, "--output", "json", **kw).stdout)


def tail_json(endpoint: str, stream: str, *args: str) -> list[dict]:
    out = cli(endpoint, "tail", stream, "--from", "trim-horizon", "--no-follow",
              "--output", "json", *args).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def delete_quietly(kinesis, name: str) -> None:
    try:
        kin.wait_status(kinesis, name, "ACTIVE")
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        kin.wait_gone(kinesis, name)
    except Exception:
        pass


# ---------------------------------------------------------------- stream


def test_stream_lifecycle(endpoint, kinesis, stream_name):
    try:
        created = cli_json(endpoint, "stream", "create", stream_name, "--shards", "2", "--wait")
        summary = created["StreamDescriptionSummary"]
        assert summary["StreamStatus"] == "ACTIVE" and summary["OpenShardCount"] == 2

        listed = cli_json(endpoint, "stream", "list")
        assert stream_name in listed["StreamNames"]
        assert stream_name in cli(endpoint, "stream", "list").stdout

        described = cli_json(endpoint, "stream", "describe", stream_name)
        shards = described["Shards"]
        assert [s["ShardId"] for s in shards] == [s["ShardId"] for s in kin.list_all_shards(kinesis, stream_name)]
        assert [(s["HashKeyRangePercent"]["Start"], s["HashKeyRangePercent"]["End"]) for s in shards] == \
            [(0.0, 50.0), (50.0, 100.0)]
        assert all(s["State"] == "OPEN" for s in shards)

        text = cli(endpoint, "stream", "describe", stream_name).stdout
        for needle in ("SHARD ID", "HASH RANGE", "PARENT", "STARTING SEQUENCE", "0%–50%", "50%–100%",
                       shards[0]["ShardId"], shards[0]["SequenceNumberRange"]["StartingSequenceNumber"]):
            assert needle in text, f"{needle!r} not in describe output:\n{text}"

        scaled = cli_json(endpoint, "stream", "scale", stream_name, "--shards", "4", "--wait")
        assert scaled["TargetShardCount"] == 4 and scaled["StreamStatus"] == "ACTIVE"
        after = cli_json(endpoint, "stream", "describe", stream_name)["Shards"]
        open_shards = [s for s in after if s["State"] == "OPEN"]
        closed = [s for s in after if s["State"] == "CLOSED"]
        assert len(open_shards) == 4 and closed
        assert all(s.get("ParentShardId") for s in open_shards)
        assert sum(s["HashKeyRangePercent"]["End"] - s["HashKeyRangePercent"]["Start"]
                   for s in open_shards) == pytest.approx(100.0)
        text = cli(endpoint, "stream", "describe", stream_name).stdout
        assert "closed" in text and "25%–50%" in text

        deleted = cli_json(endpoint, "stream", "delete", stream_name, "--wait")
        assert deleted["StreamStatus"] == "DELETED"
        assert stream_name not in cli_json(endpoint, "stream", "list")["StreamNames"]
    finally:
        delete_quietly(kinesis, stream_name)


def test_create_on_demand_with_retention(endpoint, kinesis, stream_name):
    try:
        out = cli(endpoint, "stream", "create", stream_name, "--on-demand", "--retention-hours", "48", "--wait")
        assert "ACTIVE" in out.stdout
        summary = kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
        assert summary["RetentionPeriodHours"] == 48
    finally:
        delete_quietly(kinesis, stream_name)


# ---------------------------------------------------------------- put


def test_put_from_args_and_stdin(endpoint, kinesis, make_stream):
    name = make_stream(2)
    out = cli_json(endpoint, "put", name, "one", "two", "three", "--partition-key", "fixed")
    assert out["Records"] == 3 and out["Failed"] == 0
    lines = "\n".join(json.dumps({"user": f"u{i % 3}", "i": i}) for i in range(30)) + "\n"
    out = cli_json(endpoint, "put", name, "-", "--format", "jsonl", "--key-field", "user", input=lines)
    assert out["Records"] == 30

    records = tail_json(endpoint, name)
    assert len(records) == 33
    fixed = [r["Text"] for r in records if r["PartitionKey"] == "fixed"]
    assert fixed == ["one", "two", "three"]
    by_user = defaultdict(list)
    for r in records:
        if r["PartitionKey"] != "fixed":
            assert r["Json"]["user"] == r["PartitionKey"]
            by_user[r["PartitionKey"]].append(r["Json"]["i"])
    assert sorted(by_user) == ["u0", "u1", "u2"]
    for user, seq in by_user.items():
        assert seq == [i for i in range(30) if f"u{i % 3}" == user]
    # boto3 agrees on the bytes.
    shard_id = kin.shard_for_hash(kin.list_all_shards(kinesis, name), kin.md5_hash_key("fixed"))
    got = kin.read_shard(kinesis, name, shard_id)
    assert [r["Data"] for r in got if r["PartitionKey"] == "fixed"] == [b"one", b"two", b"three"]


def test_put_csv_rows_become_json_objects(endpoint, make_stream, tmp_path):
    name = make_stream(1)
    path = tmp_path / "rows.csv"
    path.write_text('id,name,note\n1,ann,"hello, world"\n2,bob,"say ""hi"""\n')
    out = cli(endpoint, "put", name, "--file", str(path), "--format", "csv", "--key-field", "id")
    assert "put 2 records" in out.stdout and "0 failed" in out.stdout
    records = tail_json(endpoint, name)
    assert [(r["PartitionKey"], r["Json"]) for r in records] == [
        ("1", {"id": "1", "name": "ann", "note": "hello, world"}),
        ("2", {"id": "2", "name": "bob", "note": 'say "hi"'}),
    ]


def test_put_100k_line_file_all_records_land(endpoint, kinesis, make_stream, tmp_path):
    name = make_stream(4)
    path = tmp_path / "lines.txt"
    n = 100_000
    path.write_text("".join(f"line-{i}\n" for i in range(n)))
    out = cli_json(endpoint, "put", name, "--file", str(path))
    assert out["Records"] == n and out["Failed"] == 0
    assert out["Requests"] >= n // 500

    records = tail_json(endpoint, name, "--max", str(n))
    assert len(records) == n
    assert {r["Text"] for r in records} == {f"line-{i}" for i in range(n)}
    # Every shard got a share of the random keys, and boto3 counts the same.
    per_shard = defaultdict(int)
    for r in records:
        per_shard[r["ShardId"]] += 1
    assert len(per_shard) == 4
    for shard in kin.list_all_shards(kinesis, name):
        assert len(kin.read_shard(kinesis, name, shard["ShardId"])) == per_shard[shard["ShardId"]]


def test_put_shows_progress_on_a_terminal(endpoint, make_stream, tmp_path):
    name = make_stream(1)
    path = tmp_path / "lines.txt"
    path.write_text("".join(f"{i}\n" for i in range(5000)))
    master, slave = pty.openpty()
    env = {**os.environ, "RUNNEL_ENDPOINT_URL": endpoint}
    proc = subprocess.Popen([str(kin.runnel_bin()), "put", name, "--file", str(path)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + CLI_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout, _ = proc.communicate(timeout=CLI_TIMEOUT_S)
    assert proc.returncode == 0
    assert b"records sent" in seen and b"/s" in seen, seen
    assert b"put 5,000 records" in stdout

    # Not a terminal: no progress unless asked for.
    quiet = cli(endpoint, "put", name, "a", "b")
    assert "records sent" not in quiet.stderr
    loud = cli(endpoint, "put", name, "a", "b", "--progress", "always")
    assert "records sent" in loud.stderr


@pytest.mark.runnel_only
def test_put_retries_throttled_records_in_order(tmp_path):
    """With AWS quotas one shard takes 1,000 records/s: a burst of 3,000 is
    throttled, retried with backoff, and lands complete and in order."""
    srv = kin.RunnelProcess(extra_args=["--quotas", "aws"]).start()
    try:
        kinesis = kin.make_client(srv.endpoint)
        kinesis.create_stream(StreamName="throttled", ShardCount=1)
        kin.wait_status(kinesis, "throttled", "ACTIVE")
        n = 3000
        lines = "".join(json.dumps({"k": f"k{i % 5}", "i": i}) + "\n" for i in range(n))
        out = cli_json(srv.endpoint, "put", "throttled", "-", "--format", "jsonl", "--key-field", "k",
                       input=lines)
        assert out["Records"] == n and out["Failed"] == 0
        assert out["Retries"] > 0, out
        records = kin.read_shard(kinesis, "throttled", "shardId-000000000000")
        assert len(records) == n
        by_key = defaultdict(list)
        for r in records:
            by_key[r["PartitionKey"]].append(json.loads(r["Data"])["i"])
        for k, seq in by_key.items():
            assert seq == sorted(seq), f"key {k} out of order"
    finally:
        srv.kill()
        srv.cleanup()


# ---------------------------------------------------------------- tail


def test_tail_across_split_and_merge_keeps_per_key_order(endpoint, kinesis, make_stream):
    name = make_stream(1)
    keys = [f"key-{k}" for k in range(12)]
    counter = iter(range(10**6))

    def put_round(n: int) -> None:
        lines = "".join(json.dumps({"k": keys[j % len(keys)], "i": next(counter)}) + "\n" for j in range(n))
        out = cli_json(endpoint, "put", name, "-", "--format", "jsonl", "--key-field", "k", input=lines)
        assert out["Records"] == n

    put_round(300)
    parent = kin.list_all_shards(kinesis, name)[0]["ShardId"]
    kinesis.split_shard(StreamName=name, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    kin.wait_status(kinesis, name, "ACTIVE")
    put_round(300)
    children = [s["ShardId"] for s in kin.list_all_shards(kinesis, name)
                if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    assert len(children) == 2
    kinesis.merge_shards(StreamName=name, ShardToMerge=children[0], AdjacentShardToMerge=children[1])
    kin.wait_status(kinesis, name, "ACTIVE")
    put_round(300)

    records = tail_json(endpoint, name)
    assert len(records) == 900
    assert len({r["ShardId"] for r in records}) == 4  # parent, two children, merged child
    by_key = defaultdict(list)
    for r in records:
        assert r["Json"]["k"] == r["PartitionKey"]
        by_key[r["PartitionKey"]].append(r["Json"]["i"])
    assert sorted(by_key) == sorted(keys)
    for k, seq in by_key.items():
        assert seq == sorted(seq), f"{k} out of order: {seq}"
    assert sorted(i for seq in by_key.values() for i in seq) == list(range(900))
    # --key reads only the shards on that key's lineage, still in order.
    for k in keys[:3]:
        only = tail_json(endpoint, name, "--key", k)
        assert [r["Json"]["i"] for r in only] == by_key[k]


def test_tail_follow_prints_new_records_then_stops_at_max(endpoint, make_stream):
    name = make_stream(2)
    cli(endpoint, "put", name, "old")
    env = {**os.environ, "RUNNEL_ENDPOINT_URL": endpoint}
    proc = subprocess.Popen([str(kin.runnel_bin()), "tail", name, "--max", "3", "--raw"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, text=True)
    try:
        time.sleep(1.0)  # let it take LATEST iterators before anything new is written
        cli(endpoint, "put", name, "n1", "n2", "n3", "--partition-key", "p")
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["n1", "n2", "n3"]


def test_tail_text_raw_and_key_filter(endpoint, make_stream):
    name = make_stream(1)
    cli(endpoint, "put", name, '{"a": [1, 2]}', "plain text", "--partition-key", "k1")
    cli(endpoint, "put", name, "other", "--partition-key", "k2")
    text = cli(endpoint, "tail", name, "--no-follow").stdout.splitlines()
    assert len(text) == 3
    assert text[0].endswith('{"a":[1,2]}') and "key=k1" in text[0] and "shardId-000000000000" in text[0]
    assert "seq=" in text[0] and "T" in text[0].split()[0]
    assert text[1].endswith("plain text")
    raw = cli(endpoint, "tail", name, "--no-follow", "--raw", "--key", "k1").stdout
    assert raw == '{"a": [1, 2]}\nplain text\n'
    limited = tail_json(endpoint, name, "--max", "1")
    assert [base64.b64decode(r["Data"]) for r in limited] == [b'{"a": [1, 2]}']
    # Timestamps (epoch seconds or RFC 3339) before every record read every record.
    for ts in ("946684800", "2000-01-01T00:00:00Z", "2000-01-01T02:00:00.5+02:00"):
        early = cli(endpoint, "tail", name, "--no-follow", "--from", ts, "--raw").stdout
        assert early.count("\n") == 3, ts


# ---------------------------------------------------------------- errors


def test_unknown_stream_is_a_helpful_error(endpoint, stream_name):
    for args in (["stream", "describe", stream_name], ["put", stream_name, "x"],
                 ["tail", stream_name, "--no-follow"], ["stream", "delete", stream_name]):
        p = cli(endpoint, *args, check=False)
        assert p.returncode != 0, args
        assert "not found" in p.stderr and "runnel stream list" in p.stderr, p.stderr


def test_server_not_running_is_a_helpful_error():
    dead = f"http://127.0.0.1:{kin.free_port()}"
    for args in (["stream", "list"], ["put", "s", "x"], ["tail", "s"]):
        p = cli(dead, *args, check=False)
        assert p.returncode != 0
        assert f"cannot reach {dead}" in p.stderr and "runnel serve" in p.stderr, p.stderr


def test_usage_errors(endpoint):
    p = cli(endpoint, "tail", "s", "--from", "yesterday", check=False)
    assert p.returncode == 2 and "RFC 3339" in p.stderr
    p = cli(endpoint, "put", "s", "x", "--key-field", "id", check=False)
    assert p.returncode == 2 and "--format jsonl or csv" in p.stderr
