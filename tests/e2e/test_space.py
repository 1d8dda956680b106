"""Disk space comes back: compaction of the shared log after DeleteStream and
DecreaseStreamRetentionPeriod, with a long-retention stream written beside
the busy ones, and a kill -9 in the middle of reclaiming.

Each test runs its own server with small segments, so they are runnel-only.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

import kin

pytestmark = pytest.mark.runnel_only

HOUR_MS = 3600 * 1000
SEGMENT_BYTES = 256 * 1024
FRAME_HEADER = 56  # one frame per (shard, PutRecords call); see crates/runnel-log/src/lib.rs
RECORD_HEADER = 8
BOUND = 1.5


def _frame_bytes(entries: list[dict]) -> int:
    return FRAME_HEADER + sum(RECORD_HEADER + len(e["PartitionKey"]) + len(e["Data"]) for e in entries)


def _log_bytes(srv) -> int:
    """Bytes of the log, counting the active segment up to its last frame:
    runnel preallocates the active segment to its full size (a fixed
    overhead of one segment, docs/storage.md), which is not data kept."""
    log = srv.data_dir / "log"
    segments = sorted(log.glob("*.seg"))
    total = kin.dir_bytes(log)
    if segments:
        active = segments[-1]
        total -= active.stat().st_size - len(active.read_bytes().rstrip(b"\0"))
    return total


def _sweep(srv, passes: int = 3) -> None:
    # The first pass may seal a mostly dead active segment; the next compacts it.
    for _ in range(passes):
        requests.post(srv.endpoint + "/_runnel/test/retention", timeout=120).raise_for_status()
        time.sleep(0.05)  # let the writer act on the roll request (not a timing assertion)


def _advance(srv, ms: int) -> None:
    requests.post(srv.endpoint + "/_runnel/test/clock/advance", json={"ms": ms},
                  timeout=30).raise_for_status()


def _make(c, name: str, hours: int) -> None:
    c.create_stream(StreamName=name, ShardCount=1)
    kin.wait_status(c, name)
    if hours > 24:
        c.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=hours)
        kin.wait_status(c, name)


def _audit_round(c, rnd: int) -> tuple[dict, dict]:
    entry = {"Data": f"audit-{rnd:05d}-".encode() + b"a" * 1000, "PartitionKey": "audit"}
    res = kin.put_all(c, "audit", [entry])[0]
    return entry, res


def test_log_shrinks_after_delete_stream_and_retention_decrease():
    srv = kin.RunnelProcess(extra_args=["--segment-bytes", str(SEGMENT_BYTES)]).start()
    try:
        c = kin.make_client(srv.endpoint)
        _make(c, "audit", 8760)
        _make(c, "bulk", 24)
        _make(c, "medium", 168)
        audit, audit_live = [], 0
        medium_live = 0
        blob = bytes(range(256)) * 8  # 2 KiB
        for rnd in range(60):
            entry, res = _audit_round(c, rnd)
            audit.append((entry["Data"], res["SequenceNumber"]))
            audit_live += _frame_bytes([entry])
            bulk = [{"Data": blob, "PartitionKey": f"b{rnd}-{i}"} for i in range(50)]
            kin.put_all(c, "bulk", bulk)
            medium = [{"Data": blob, "PartitionKey": f"m{rnd}-{i}"} for i in range(10)]
            kin.put_all(c, "medium", medium)
            medium_live += _frame_bytes(medium)
        before = _log_bytes(srv)
        assert before > 6 * 1024 * 1024, before

        # 1. DeleteStream bulk: only audit and medium remain.
        c.delete_stream(StreamName="bulk")
        kin.wait_gone(c, "bulk")
        _sweep(srv)
        live = audit_live + medium_live
        after_delete = _log_bytes(srv)
        print(f"after DeleteStream: log {after_delete} B for {live} B retained "
              f"({after_delete / live:.3f}x; {before} B before)")
        assert after_delete <= BOUND * live, (after_delete, live)

        # 2. Retention decrease: medium's records (30 h old) expire; audit stays.
        _advance(srv, 30 * HOUR_MS)
        c.decrease_stream_retention_period(StreamName="medium", RetentionPeriodHours=24)
        kin.wait_status(c, "medium")
        for rnd in range(60, 70):
            entry, res = _audit_round(c, rnd)
            audit.append((entry["Data"], res["SequenceNumber"]))
            audit_live += _frame_bytes([entry])
        _sweep(srv)
        after_decrease = _log_bytes(srv)
        print(f"after DecreaseStreamRetentionPeriod: log {after_decrease} B for {audit_live} B "
              f"retained ({after_decrease / audit_live:.3f}x)")
        assert after_decrease <= BOUND * audit_live, (after_decrease, audit_live)
        assert kin.read_shard(c, "medium", "shardId-000000000000") == []

        # The long-retention stream reads back whole, in order, with its sequence numbers.
        got = kin.read_shard(c, "audit", "shardId-000000000000")
        assert [(r["Data"], r["SequenceNumber"]) for r in got] == audit
        # AT_TIMESTAMP still finds the records written after the clock moved.
        ts = got[60]["ApproximateArrivalTimestamp"]
        later = kin.read_shard(c, "audit", "shardId-000000000000", kind="AT_TIMESTAMP", Timestamp=ts)
        assert [r["Data"] for r in later] == [d for d, _ in audit[60:]]
        # And writes go on after compaction.
        entry, res = _audit_round(c, 70)
        assert int(res["SequenceNumber"]) > int(audit[-1][1])
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()


def test_kill_9_while_reclaiming_then_full_read_back():
    args = ["--segment-bytes", str(SEGMENT_BYTES)]
    srv = kin.RunnelProcess(extra_args=args).start()
    procs = [srv]
    try:
        c = kin.make_client(srv.endpoint)
        _make(c, "audit", 8760)
        _make(c, "bulk", 24)
        audit, audit_live = [], 0
        blob = b"x" * 4096
        for rnd in range(80):
            entry, res = _audit_round(c, rnd)
            audit.append((entry["Data"], res["SequenceNumber"]))
            audit_live += _frame_bytes([entry])
            kin.put_all(c, "bulk", [{"Data": blob, "PartitionKey": f"b{rnd}-{i}"} for i in range(40)])
        c.delete_stream(StreamName="bulk")
        kin.wait_gone(c, "bulk")
        full = _log_bytes(srv)

        def sweep_until_killed(endpoint: str) -> None:
            try:
                requests.post(endpoint + "/_runnel/test/retention", timeout=120)
            except requests.RequestException:
                pass  # killed mid-request: expected

        # Start reclaiming and kill -9 at different moments of it.
        sizes = []
        for delay in (0.0, 0.01, 0.03, 0.08, 0.2):
            t = threading.Thread(target=sweep_until_killed, args=(srv.endpoint,), daemon=True)
            t.start()
            time.sleep(delay)
            srv.kill()
            t.join(timeout=60)
            srv = kin.RunnelProcess(data_dir=procs[0].data_dir, extra_args=args).start()
            procs.append(srv)
            c = kin.make_client(srv.endpoint)
            got = kin.read_shard(c, "audit", "shardId-000000000000")
            assert [(r["Data"], r["SequenceNumber"]) for r in got] == audit, f"kill after {delay}s"
            sizes.append(_log_bytes(srv))
        print(f"log bytes after each kill and restart: {sizes}")

        _sweep(srv)
        size = _log_bytes(srv)
        print(f"after kills and a full sweep: log {size} B for {audit_live} B retained "
              f"({size / audit_live:.3f}x; {full} B before)")
        assert size <= BOUND * audit_live, (size, audit_live)
        got = kin.read_shard(c, "audit", "shardId-000000000000")
        assert [(r["Data"], r["SequenceNumber"]) for r in got] == audit
        leftovers = [p.name for p in (procs[0].data_dir / "log").iterdir()
                     if not p.name.endswith((".seg", ".idx")) and p.name != "retired"]
        assert leftovers == [], leftovers
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        for p in reversed(procs):
            p.kill()
        procs[0].cleanup()
        for p in procs[1:]:
            p.log_path.unlink(missing_ok=True)


def test_full_disk_names_the_cause_and_deleting_a_stream_makes_room():
    """A small tmpfs fills up: PutRecords fails with a message naming the cause,
    DeleteStream still works (the catalog reopens itself), compaction gives the
    space back and writes resume, without a restart. Needs mount privileges."""
    import subprocess
    import tempfile
    from pathlib import Path

    from botocore.exceptions import ClientError

    mnt = Path(tempfile.mkdtemp(prefix="runnel-e2e-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
                       capture_output=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    srv = kin.RunnelProcess(data_dir=mnt / "data", extra_args=["--segment-bytes", str(SEGMENT_BYTES)])
    try:
        srv.start()
        c = kin.make_client(srv.endpoint, retry_throttling=False)
        _make(c, "audit", 8760)
        _make(c, "bulk", 24)
        audit = []
        blob = b"z" * 4096
        failure = None
        for rnd in range(10_000):
            entry, res = _audit_round(c, rnd)
            audit.append((entry["Data"], res["SequenceNumber"]))
            try:
                c.put_records(StreamName="bulk",
                              Records=[{"Data": blob, "PartitionKey": f"b{rnd}-{i}"} for i in range(40)])
            except ClientError as e:
                failure = e
                break
        assert failure is not None, "the disk never filled"
        err = failure.response["Error"]
        assert err["Code"] == "InternalFailureException", err
        assert err["Message"] == ("Internal service failure: no space left on device. Free disk space "
                                  "(delete streams or decrease their retention period) and retry."), err
        full = _log_bytes(srv)

        c.delete_stream(StreamName="bulk")
        kin.wait_gone(c, "bulk")
        _sweep(srv)
        after = _log_bytes(srv)
        print(f"full disk: log {full} B, after DeleteStream and a sweep {after} B")
        assert after * 4 < full, (after, full)
        # Writes and catalog changes work again with no restart.
        for rnd in range(len(audit), len(audit) + 5):
            entry, res = _audit_round(c, rnd)
            audit.append((entry["Data"], res["SequenceNumber"]))
        c.add_tags_to_stream(StreamName="audit", Tags={"after": "full"})
        _make(c, "bulk2", 24)
        got = kin.read_shard(c, "audit", "shardId-000000000000")
        assert [(r["Data"], r["SequenceNumber"]) for r in got] == audit
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.kill()
        srv.log_path.unlink(missing_ok=True)
        subprocess.run(["umount", str(mnt)], check=False)
        mnt.rmdir()
