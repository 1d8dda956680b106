"""Resharding: SplitShard, MergeShards, UpdateShardCount, lineage, ChildShards,
ListShards ShardFilter, closed shards expiring, and kill -9 in the middle of it all.

Records are checked by walking the lineage as a KCL consumer does: a shard is read
only after its parents were read to the end, and a closed shard's last GetRecords
names its children (ChildShards) instead of a NextShardIterator.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError

import kin

pytestmark = pytest.mark.kinesalite_diverges(reason="no ChildShards, ShardFilter, UpdateShardCount lineage")

HALF = 2**127  # first hash key of shard 1 in a 2-shard stream
KEYS = [f"key-{i:02d}" for i in range(24)]
ROUNDS_PER_PHASE = 3


def _sid(i: int) -> str:
    return f"shardId-{i:012d}"


def _by_id(shards: list[dict]) -> dict[str, dict]:
    return {s["ShardId"]: s for s in shards}


def _put_rounds(client, name: str, phase: str, log: dict[str, list[bytes]],
                acks: dict[bytes, tuple[str, str]]) -> set[str]:
    """ROUNDS_PER_PHASE PutRecords with every key once each, so per key the put order
    is the round order. Checks each record went to the open shard covering its key.
    Returns the shards that took records."""
    open_now = kin.list_shards_all(client, name, ShardFilter={"Type": "AT_LATEST"})
    used: set[str] = set()
    for rnd in range(ROUNDS_PER_PHASE):
        entries = [{"Data": f"{phase}-{rnd}-{k}".encode(), "PartitionKey": k} for k in KEYS]
        for e, res in zip(entries, kin.put_all(client, name, entries)):
            want = kin.shard_for_hash(open_now, kin.md5_hash_key(e["PartitionKey"]))
            assert res["ShardId"] == want, f"{e['PartitionKey']} went to {res['ShardId']}, not open shard {want}"
            log.setdefault(e["PartitionKey"], []).append(e["Data"])
            acks[e["Data"]] = (res["ShardId"], res["SequenceNumber"])
            used.add(res["ShardId"])
    return used


def _check_records(order: list[str], records: dict[str, list[dict]],
                   acks: dict[bytes, tuple[str, str]], log: dict[str, list[bytes]] | None = None) -> None:
    """Every acknowledged record read exactly once, where its ack said; per
    partition key, reading order equals put order."""
    seen: dict[bytes, tuple[str, str]] = {}
    per_key: dict[str, list[bytes]] = {}
    for sid in order:
        for r in records[sid]:
            assert r["Data"] not in seen, f"record {r['Data']!r} read twice ({seen[r['Data']]} and {sid})"
            seen[r["Data"]] = (sid, r["SequenceNumber"])
            per_key.setdefault(r["PartitionKey"], []).append(r["Data"])
    assert set(seen) == set(acks), (f"missing {sorted(set(acks) - set(seen))[:5]}, "
                                    f"unexpected {sorted(set(seen) - set(acks))[:5]}")
    for data, where in acks.items():
        assert seen[data] == where, f"{data!r} acknowledged at {where}, read at {seen[data]}"
    if log is not None:
        for key, puts in log.items():
            assert per_key[key] == puts, f"records of {key} out of put order"


# ---------------------------------------------------------------- split then merge

def test_split_then_merge_lineage_child_shards_and_per_key_order(kinesis, make_stream):
    name = make_stream(2)
    s0, s1, s2, s3, s4 = (_sid(i) for i in range(5))
    log: dict[str, list[bytes]] = {}
    acks: dict[bytes, tuple[str, str]] = {}
    assert _put_rounds(kinesis, name, "before", log, acks) == {s0, s1}

    split_at = HALF // 2
    kinesis.split_shard(StreamName=name, ShardToSplit=s0, NewStartingHashKey=str(split_at))
    kin.wait_status(kinesis, name, "ACTIVE")
    shards = _by_id(kin.list_shards_all(kinesis, name))
    assert sorted(shards) == [s0, s1, s2, s3]
    assert kin.is_closed(shards[s0]) and not kin.is_closed(shards[s1])
    assert kin.hash_range(shards[s0]) == (0, HALF - 1)  # a closed parent keeps its range
    assert shards[s2]["ParentShardId"] == s0 and "AdjacentParentShardId" not in shards[s2]
    assert shards[s3]["ParentShardId"] == s0 and "AdjacentParentShardId" not in shards[s3]
    assert kin.hash_range(shards[s2]) == (0, split_at - 1)
    assert kin.hash_range(shards[s3]) == (split_at, HALF - 1)
    assert "ParentShardId" not in shards[s1]
    ending = int(shards[s0]["SequenceNumberRange"]["EndingSequenceNumber"])
    last_in_s0 = max(int(seq) for sid, seq in acks.values() if sid == s0)
    assert ending >= last_in_s0
    for child in (s2, s3):
        assert not kin.is_closed(shards[child])
        assert int(shards[child]["SequenceNumberRange"]["StartingSequenceNumber"]) > ending

    used = _put_rounds(kinesis, name, "split", log, acks)
    assert s0 not in used and used <= {s1, s2, s3}
    assert {s2, s3} <= used, "the fixed keys should hash into both children"

    kinesis.merge_shards(StreamName=name, ShardToMerge=s2, AdjacentShardToMerge=s3)
    kin.wait_status(kinesis, name, "ACTIVE")
    shards = _by_id(kin.list_shards_all(kinesis, name))
    assert sorted(shards) == [s0, s1, s2, s3, s4]
    assert kin.is_closed(shards[s2]) and kin.is_closed(shards[s3])
    assert shards[s4]["ParentShardId"] == s2 and shards[s4]["AdjacentParentShardId"] == s3
    assert kin.hash_range(shards[s4]) == (0, HALF - 1)
    assert kin.open_ranges(kinesis, name) == [(0, HALF - 1), (HALF, kin.HASH_KEY_MAX)]

    assert _put_rounds(kinesis, name, "merged", log, acks) == {s1, s4}

    # ChildShards come with the last page of a closed shard, and only then.
    recs, child_shards = kin.read_to_end(kinesis, name, shards[s0], limit=5)
    assert len(recs) == sum(1 for sid, _ in acks.values() if sid == s0)
    assert sorted(child_shards, key=lambda c: c["ShardId"]) == [
        {"ShardId": s2, "ParentShards": [s0],
         "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": str(split_at - 1)}},
        {"ShardId": s3, "ParentShards": [s0],
         "HashKeyRange": {"StartingHashKey": str(split_at), "EndingHashKey": str(HALF - 1)}},
    ]
    for parent in (s2, s3):
        _, child_shards = kin.read_to_end(kinesis, name, shards[parent])
        assert [c["ShardId"] for c in child_shards] == [s4]
        assert sorted(child_shards[0]["ParentShards"]) == [s2, s3]
        assert child_shards[0]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(HALF - 1)}

    order, records, _ = kin.walk_lineage(kinesis, name, limit=7)
    assert order.index(s0) < order.index(s2) < order.index(s4)
    assert order.index(s3) < order.index(s4)
    _check_records(order, records, acks, log)
    assert len(acks) == 3 * ROUNDS_PER_PHASE * len(KEYS)


def test_closed_shard_iterator_at_latest_ends_with_child_shards(kinesis, make_stream):
    # A consumer that catches up on a closed shard (LATEST, or the iterator it held
    # when the split happened) gets no records, no NextShardIterator, and the children.
    name = make_stream(1)
    it = kin.iterator(kinesis, name, _sid(0), "LATEST")
    kinesis.split_shard(StreamName=name, ShardToSplit=_sid(0), NewStartingHashKey=str(HALF))
    kin.wait_status(kinesis, name, "ACTIVE")
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == []
    assert r.get("NextShardIterator") is None
    assert sorted(c["ShardId"] for c in r["ChildShards"]) == [_sid(1), _sid(2)]
    it = kin.iterator(kinesis, name, _sid(0), "LATEST")
    r = kinesis.get_records(ShardIterator=it)
    assert r["Records"] == [] and r.get("NextShardIterator") is None
    assert len(r["ChildShards"]) == 2


# ---------------------------------------------------------------- errors

def test_split_and_merge_errors(kinesis, make_stream):
    name = make_stream(3)
    ranges = kin.even_split(3)
    kin.expect_error("ResourceNotFoundException", kinesis.split_shard, StreamName=name,
                     ShardToSplit=_sid(9), NewStartingHashKey="5", contains=(_sid(9),))
    kin.expect_error("ResourceNotFoundException", kinesis.merge_shards, StreamName=name,
                     ShardToMerge=_sid(0), AdjacentShardToMerge=_sid(9))
    start1, end1 = ranges[1]
    # NewStartingHashKey must be > StartingHashKey + 1 and < EndingHashKey (AWS).
    for bad in (start1, start1 + 1, end1, end1 + 1, 0):
        kin.expect_error("InvalidArgumentException", kinesis.split_shard, StreamName=name,
                         ShardToSplit=_sid(1), NewStartingHashKey=str(bad), contains=("NewStartingHashKey",))
    kin.expect_error("InvalidArgumentException", kinesis.merge_shards, StreamName=name,
                     ShardToMerge=_sid(0), AdjacentShardToMerge=_sid(2))
    kin.expect_error("InvalidArgumentException", kinesis.merge_shards, StreamName=name,
                     ShardToMerge=_sid(1), AdjacentShardToMerge=_sid(1))
    assert kin.open_ranges(kinesis, name) == ranges  # nothing changed

    # The smallest legal split at the end: a two-key child.
    kinesis.split_shard(StreamName=name, ShardToSplit=_sid(1), NewStartingHashKey=str(end1 - 1))
    kin.wait_status(kinesis, name, "ACTIVE")
    shards = _by_id(kin.list_shards_all(kinesis, name))
    assert kin.hash_range(shards[_sid(4)]) == (end1 - 1, end1)
    # A shard that was split is closed for good.
    kin.expect_error("ResourceInUseException", kinesis.split_shard, StreamName=name,
                     ShardToSplit=_sid(1), NewStartingHashKey=str(start1 + 1))
    kin.expect_error("ResourceInUseException", kinesis.merge_shards, StreamName=name,
                     ShardToMerge=_sid(0), AdjacentShardToMerge=_sid(1))
    kin.assert_shard_map(list(shards.values()))


def _advance(endpoint: str, ms: int) -> None:
    r = requests.post(endpoint + "/_runnel/test/clock/advance", json={"ms": ms}, timeout=30)
    assert r.status_code == 200, r.text


@pytest.mark.runnel_only
def test_resharding_needs_active_stream_and_respects_shard_limit():
    # A long transition that only the test clock ends, so UPDATING is observed without races.
    transition_ms = 600_000
    srv = kin.RunnelProcess(transition_ms=transition_ms, extra_args=["--account-shards-max", "4"]).start()
    try:
        c = kin.make_client(srv.endpoint, retry_throttling=False)
        c.create_stream(StreamName="lim", ShardCount=2)
        kin.expect_error("ResourceInUseException", c.split_shard, StreamName="lim",
                         ShardToSplit=_sid(0), NewStartingHashKey="1")
        _advance(srv.endpoint, transition_ms + 1)
        kin.wait_status(c, "lim", "ACTIVE")

        c.split_shard(StreamName="lim", ShardToSplit=_sid(0), NewStartingHashKey=str(HALF // 2))
        assert kin.wait_status(c, "lim", "UPDATING")["OpenShardCount"] == 3
        for call, kw in [
            (c.split_shard, {"ShardToSplit": _sid(1), "NewStartingHashKey": str(HALF + 1)}),
            (c.merge_shards, {"ShardToMerge": _sid(2), "AdjacentShardToMerge": _sid(3)}),
            (c.update_shard_count, {"TargetShardCount": 2, "ScalingType": "UNIFORM_SCALING"}),
        ]:
            kin.expect_error("ResourceInUseException", call, StreamName="lim", **kw)
        # Writes go on while UPDATING, to the children already.
        r = c.put_record(StreamName="lim", Data=b"x", PartitionKey="p", ExplicitHashKey="1")
        assert r["ShardId"] == _sid(2)
        _advance(srv.endpoint, transition_ms + 1)
        kin.wait_status(c, "lim", "ACTIVE")

        c.split_shard(StreamName="lim", ShardToSplit=_sid(1), NewStartingHashKey=str(HALF + 2))
        _advance(srv.endpoint, transition_ms + 1)
        kin.wait_status(c, "lim", "ACTIVE")
        limits = c.describe_limits()
        assert (limits["ShardLimit"], limits["OpenShardCount"]) == (4, 4)
        kin.expect_error("LimitExceededException", c.split_shard, StreamName="lim",
                         ShardToSplit=_sid(2), NewStartingHashKey="2")
        kin.expect_error("LimitExceededException", c.update_shard_count, StreamName="lim",
                         TargetShardCount=5, ScalingType="UNIFORM_SCALING")
        assert kin.wait_status(c, "lim", "ACTIVE")["OpenShardCount"] == 4
        # Merging is always allowed, and frees room for a split.
        c.merge_shards(StreamName="lim", ShardToMerge=_sid(2), AdjacentShardToMerge=_sid(3))
        _advance(srv.endpoint, transition_ms + 1)
        kin.wait_status(c, "lim", "ACTIVE")
        c.split_shard(StreamName="lim", ShardToSplit=_sid(6), NewStartingHashKey="2")
        _advance(srv.endpoint, transition_ms + 1)
        kin.wait_status(c, "lim", "ACTIVE")
        kin.assert_shard_map(kin.list_shards_all(c, "lim"))
        assert c.describe_limits()["OpenShardCount"] == 4
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()


# ---------------------------------------------------------------- UpdateShardCount

def _put_batch(client, name: str, tag: str, acks: dict[bytes, tuple[str, str]], n: int = 200) -> None:
    entries = [{"Data": f"{tag}-{i}-{uuid.uuid4().hex[:8]}".encode(), "PartitionKey": f"{tag}-{i}"}
               for i in range(n)]
    open_ids = {s["ShardId"] for s in kin.list_shards_all(client, name, ShardFilter={"Type": "AT_LATEST"})}
    for e, res in zip(entries, kin.put_all(client, name, entries)):
        assert res["ShardId"] in open_ids
        acks[e["Data"]] = (res["ShardId"], res["SequenceNumber"])


def test_update_shard_count_uniform_scaling(kinesis, make_stream, endpoint):
    # Standard retry mode retries LimitExceededException as throttling; these must not.
    once = kin.make_client(endpoint, retry_throttling=False)
    base_open = kin.settled_limits(kinesis)["OpenShardCount"]
    name = make_stream(4)
    acks: dict[bytes, tuple[str, str]] = {}
    _put_batch(kinesis, name, "s4", acks)
    assert kinesis.describe_limits()["OpenShardCount"] == base_open + 4

    current = 4
    for target in (8, 4, 3):
        if target == 4:
            # 8 -> 3 is below half of the open shards: rejected, nothing changes.
            kin.expect_error("LimitExceededException", once.update_shard_count, StreamName=name,
                             TargetShardCount=3, ScalingType="UNIFORM_SCALING")
            kin.expect_error("LimitExceededException", once.update_shard_count, StreamName=name,
                             TargetShardCount=17, ScalingType="UNIFORM_SCALING")
            assert kin.wait_status(kinesis, name, "ACTIVE")["OpenShardCount"] == 8
        r = kinesis.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
        r.pop("ResponseMetadata")
        assert r == {"StreamName": name, "CurrentShardCount": current, "TargetShardCount": target,
                     "StreamARN": kin.stream_arn(name)}
        summary = kin.wait_status(kinesis, name, "ACTIVE")
        assert summary["OpenShardCount"] == target
        assert kin.open_ranges(kinesis, name) == kin.even_split(target)
        assert kinesis.describe_limits()["OpenShardCount"] == base_open + target
        kin.assert_shard_map(kin.list_shards_all(kinesis, name))
        _put_batch(kinesis, name, f"s{target}", acks)
        current = target

    # Same ranges as a stream created with 3 shards.
    fresh = make_stream(3)
    assert kin.open_ranges(kinesis, fresh) == kin.open_ranges(kinesis, name)
    order, records, _ = kin.walk_lineage(kinesis, name)
    _check_records(order, records, acks)


@pytest.mark.parametrize("start,target", [(1, 2), (2, 3), (3, 5), (5, 3), (5, 8), (7, 4), (6, 11), (3, 2)])
def test_update_shard_count_any_step_ends_even(kinesis, make_stream, start, target):
    name = make_stream(start)
    acks: dict[bytes, tuple[str, str]] = {}
    _put_batch(kinesis, name, "before", acks, n=100)
    r = kinesis.update_shard_count(StreamName=name, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
    assert (r["CurrentShardCount"], r["TargetShardCount"]) == (start, target)
    assert kin.wait_status(kinesis, name, "ACTIVE")["OpenShardCount"] == target
    assert kin.open_ranges(kinesis, name) == kin.even_split(target)
    _put_batch(kinesis, name, "after", acks, n=100)
    order, records, shards = kin.walk_lineage(kinesis, name)
    _check_records(order, records, acks)
    # Every closed shard was replaced: it has at least one child.
    named = {p for s in shards for p in kin.parents_of(s)}
    assert {s["ShardId"] for s in shards if kin.is_closed(s)} <= named


def test_update_shard_count_argument_errors(kinesis_nv, make_stream):
    name = make_stream(2)
    kin.expect_error("ValidationException", kinesis_nv.update_shard_count, StreamName=name,
                     TargetShardCount=0, ScalingType="UNIFORM_SCALING")
    kin.expect_error("ValidationException", kinesis_nv.update_shard_count, StreamName=name,
                     TargetShardCount=3, ScalingType="RANDOM")
    assert kin.wait_status(kinesis_nv, name, "ACTIVE")["OpenShardCount"] == 2


def test_per_key_order_holds_while_resharding_under_load(kinesis, make_stream, endpoint):
    # Writers own their keys and wait for each ack, so per key the put order is
    # known; reshards run meanwhile. Walking the lineage must give that order back.
    name = make_stream(2)
    stop = threading.Event()
    lock = threading.Lock()
    acks: dict[bytes, tuple[str, str]] = {}
    errors: list[str] = []

    def writer(w: int) -> None:
        c = kin.make_client(endpoint, retry_throttling=False)
        keys = [f"w{w}-k{i}" for i in range(8)]
        for n in range(2000):  # bounds the load if stop never comes
            if stop.is_set():
                return
            entries = [{"Data": f"{k}:{n}".encode(), "PartitionKey": k} for k in keys]
            try:
                r = c.put_records(StreamName=name, Records=entries)
            except (BotoCoreError, ClientError) as e:
                errors.append(str(e))
                return
            if r["FailedRecordCount"]:
                errors.append(f"failed records: {r['Records']}")
                return
            with lock:
                for e, res in zip(entries, r["Records"]):
                    acks[e["Data"]] = (res["ShardId"], res["SequenceNumber"])

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(3)]
    for t in threads:
        t.start()
    try:
        steps = [
            lambda: kinesis.split_shard(StreamName=name, ShardToSplit=_sid(0), NewStartingHashKey=str(HALF // 2)),
            lambda: kinesis.split_shard(StreamName=name, ShardToSplit=_sid(1), NewStartingHashKey=str(HALF + HALF // 2)),
            lambda: kinesis.merge_shards(StreamName=name, ShardToMerge=_sid(3), AdjacentShardToMerge=_sid(4)),
            lambda: kinesis.update_shard_count(StreamName=name, TargetShardCount=5, ScalingType="UNIFORM_SCALING"),
            lambda: kinesis.update_shard_count(StreamName=name, TargetShardCount=3, ScalingType="UNIFORM_SCALING"),
        ]
        for step in steps:
            before = len(acks)
            deadline = time.monotonic() + 20
            while len(acks) < before + 200:  # let writes flow between reshards
                assert not errors, errors[:2]
                assert time.monotonic() < deadline, "writers made no progress"
                time.sleep(kin.POLL_INTERVAL_S)
            step()
            kin.wait_status(kinesis, name, "ACTIVE")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:2]
    assert kin.open_ranges(kinesis, name) == kin.even_split(3)
    order, records, _ = kin.walk_lineage(kinesis, name)
    _check_records(order, records, acks)
    per_key: dict[str, list[int]] = {}
    for sid in order:
        for r in records[sid]:
            key, n = r["Data"].decode().split(":")
            per_key.setdefault(key, []).append(int(n))
    for key, ns in per_key.items():
        assert ns == list(range(len(ns))), f"{key} read out of put order: {ns[:50]}"


@pytest.mark.runnel_only
def test_update_shard_count_ten_times_a_day():
    srv = kin.RunnelProcess().start()
    try:
        c = kin.make_client(srv.endpoint, retry_throttling=False)
        c.create_stream(StreamName="often", ShardCount=2)
        kin.wait_status(c, "often")
        for i in range(10):
            c.update_shard_count(StreamName="often", TargetShardCount=3 if i % 2 == 0 else 2,
                                 ScalingType="UNIFORM_SCALING")
            kin.wait_status(c, "often")
        kin.expect_error("LimitExceededException", c.update_shard_count, StreamName="often",
                         TargetShardCount=3, ScalingType="UNIFORM_SCALING")
        _advance(srv.endpoint, 24 * 3600 * 1000 + 1)
        c.update_shard_count(StreamName="often", TargetShardCount=3, ScalingType="UNIFORM_SCALING")
    finally:
        srv.cleanup()


# ---------------------------------------------------------------- ListShards filters and expiry

def _ids(shards: list[dict]) -> list[str]:
    return sorted(s["ShardId"] for s in shards)


@pytest.mark.runnel_only
def test_list_shards_filters_across_split_and_merge(kinesis, make_stream, clock):
    def server_now() -> dt.datetime:
        return dt.datetime.fromtimestamp(time.time() + clock.offset_ms / 1000, dt.timezone.utc)

    minute = 60_000
    name = make_stream(2)
    clock.advance(minute)
    t_before_split = server_now()
    clock.advance(minute)
    kinesis.split_shard(StreamName=name, ShardToSplit=_sid(0), NewStartingHashKey=str(HALF // 2))
    kin.wait_status(kinesis, name, "ACTIVE")
    clock.advance(minute)
    t_between = server_now()
    clock.advance(minute)
    kinesis.merge_shards(StreamName=name, ShardToMerge=_sid(2), AdjacentShardToMerge=_sid(3))
    kin.wait_status(kinesis, name, "ACTIVE")
    clock.advance(minute)

    def f(ftype: str, **kw) -> list[str]:
        return _ids(kin.list_shards_all(kinesis, name, ShardFilter={"Type": ftype, **kw}))

    s = [_sid(i) for i in range(5)]
    assert _ids(kin.list_shards_all(kinesis, name)) == s
    assert f("AT_LATEST") == [s[1], s[4]]
    assert f("AT_TRIM_HORIZON") == [s[0], s[1]]
    assert f("FROM_TRIM_HORIZON") == s
    assert f("AT_TIMESTAMP", Timestamp=t_before_split) == [s[0], s[1]]
    assert f("AT_TIMESTAMP", Timestamp=t_between) == [s[1], s[2], s[3]]
    assert f("FROM_TIMESTAMP", Timestamp=t_before_split) == s
    assert f("FROM_TIMESTAMP", Timestamp=t_between) == [s[1], s[2], s[3], s[4]]
    assert f("AFTER_SHARD_ID", ShardId=s[1]) == [s[2], s[3], s[4]]
    for ftype in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
        kin.expect_error("InvalidArgumentException", kinesis.list_shards, StreamName=name,
                         ShardFilter={"Type": ftype}, contains=("Timestamp",))


@pytest.mark.runnel_only
def test_closed_shards_disappear_when_their_data_expires(kinesis, make_stream, clock):
    name = make_stream(1)
    kinesis.put_record(StreamName=name, Data=b"old", PartitionKey="k")
    kinesis.split_shard(StreamName=name, ShardToSplit=_sid(0), NewStartingHashKey=str(HALF))
    kin.wait_status(kinesis, name, "ACTIVE")
    r = kinesis.put_record(StreamName=name, Data=b"new", PartitionKey="k")
    assert r["ShardId"] in (_sid(1), _sid(2))
    assert _ids(kin.list_all_shards(kinesis, name)) == [_sid(0), _sid(1), _sid(2)]

    clock.advance(25 * 3600 * 1000)  # past the 24 h retention
    open_ids = [_sid(1), _sid(2)]
    assert _ids(kin.list_shards_all(kinesis, name)) == open_ids
    assert _ids(kin.list_all_shards(kinesis, name)) == open_ids
    for ftype in ("FROM_TRIM_HORIZON", "AT_TRIM_HORIZON"):
        assert _ids(kin.list_shards_all(kinesis, name, ShardFilter={"Type": ftype})) == open_ids, ftype
    assert kin.wait_status(kinesis, name, "ACTIVE")["OpenShardCount"] == 2
    kin.expect_error("ResourceNotFoundException", kinesis.get_shard_iterator, StreamName=name,
                     ShardId=_sid(0), ShardIteratorType="TRIM_HORIZON")
    # Open shards stay, and the lineage still names the expired parent.
    for s in kin.list_shards_all(kinesis, name):
        assert s["ParentShardId"] == _sid(0)
    kin.assert_shard_map(kin.list_shards_all(kinesis, name))


# ---------------------------------------------------------------- kill -9 while resharding

class _Load:
    """Writers with retries off: a record counts as acknowledged only when the one
    request that carried it got a SequenceNumber back."""

    WRITERS = 2
    BATCH = 20
    MAX_BATCHES = 400  # bounds the load even if nothing stops it

    def __init__(self, stream: str):
        self.stream = stream
        self.lock = threading.Lock()
        self.acked: dict[bytes, tuple[str, str]] = {}
        self.attempted: set[bytes] = set()
        self.client_errors: list[str] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, endpoint: str) -> None:
        self._stop.clear()
        gen = uuid.uuid4().hex[:6]
        self._threads = [threading.Thread(target=self._run, args=(endpoint, f"{gen}-{w}"), daemon=True)
                         for w in range(self.WRITERS)]
        for t in self._threads:
            t.start()

    def _run(self, endpoint: str, tag: str) -> None:
        c = kin.make_client(endpoint, retry_throttling=False)
        for b in range(self.MAX_BATCHES):
            if self._stop.is_set():
                return
            entries = [{"Data": f"{tag}-{b}-{i}".encode(), "PartitionKey": uuid.uuid4().hex} for i in range(self.BATCH)]
            with self.lock:
                self.attempted.update(e["Data"] for e in entries)
            try:
                r = c.put_records(StreamName=self.stream, Records=entries)
            except ClientError as e:
                with self.lock:
                    self.client_errors.append(str(e))
                continue
            except (BotoCoreError, OSError):
                return  # the server is gone: this batch was in flight
            with self.lock:
                for e, res in zip(entries, r["Records"]):
                    if "ErrorCode" not in res:
                        self.acked[e["Data"]] = (res["ShardId"], res["SequenceNumber"])

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def wait_acked(self, n: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acked_count() < n:
            assert time.monotonic() < deadline, f"only {self.acked_count()} records acknowledged"
            time.sleep(kin.POLL_INTERVAL_S)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in self._threads)


def _check_after_crash(client, name: str, load: _Load) -> None:
    kin.wait_status(client, name, "ACTIVE")
    shards = kin.list_shards_all(client, name)
    kin.assert_shard_map(shards)
    latest = _ids(kin.list_shards_all(client, name, ShardFilter={"Type": "AT_LATEST"}))
    assert latest == sorted(s["ShardId"] for s in shards if not kin.is_closed(s)), \
        "a shard is listed open by AT_LATEST but closed by its SequenceNumberRange (or the reverse)"
    order, records, _ = kin.walk_lineage(client, name)
    with load.lock:
        acked, attempted = dict(load.acked), set(load.attempted)
        assert not load.client_errors, load.client_errors[:3]
    seen: dict[bytes, tuple[str, str]] = {}
    for sid in order:
        for r in records[sid]:
            assert r["Data"] in attempted, f"unknown record {r['Data'][:60]!r} in {sid}"
            assert r["Data"] not in seen, f"record {r['Data'][:60]!r} read twice"
            seen[r["Data"]] = (sid, r["SequenceNumber"])
    missing = [d for d in acked if d not in seen]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    for data, where in acked.items():
        assert seen[data] == where, f"{data!r} acknowledged at {where}, read at {seen[data]}"
    # New records go to open shards only (and count as acknowledged from now on).
    entries = [{"Data": f"probe-{uuid.uuid4().hex}".encode(), "PartitionKey": f"p{i}"} for i in range(50)]
    r = client.put_records(StreamName=name, Records=entries)
    assert r["FailedRecordCount"] == 0
    assert {res["ShardId"] for res in r["Records"]} <= set(latest)
    with load.lock:
        for e, res in zip(entries, r["Records"]):
            load.attempted.add(e["Data"])
            load.acked[e["Data"]] = (res["ShardId"], res["SequenceNumber"])


def _widest_open(client, name: str) -> tuple[str, int]:
    shards = kin.list_shards_all(client, name, ShardFilter={"Type": "AT_LATEST"})
    s = max(shards, key=lambda s: kin.hash_range(s)[1] - kin.hash_range(s)[0])
    start, end = kin.hash_range(s)
    return s["ShardId"], start + (end - start) // 2 + 1


@pytest.mark.runnel_only
def test_kill_9_during_resharding_keeps_lineage_and_every_acknowledged_record():
    srv = kin.RunnelProcess().start()
    name = "rs"
    try:
        client = kin.make_client(srv.endpoint, retry_throttling=False)
        client.create_stream(StreamName=name, ShardCount=2)
        kin.wait_status(client, name)
        load = _Load(name)

        # 1. kill -9 right after SplitShard returns, with writers mid-request.
        load.start(srv.endpoint)
        load.wait_acked(1000)
        shard, at = _widest_open(client, name)
        client.split_shard(StreamName=name, ShardToSplit=shard, NewStartingHashKey=str(at))
        srv.kill()
        load.stop()
        srv.start()
        client = kin.make_client(srv.endpoint, retry_throttling=False)
        _check_after_crash(client, name, load)
        assert kin.wait_status(client, name)["OpenShardCount"] == 3, "the acknowledged split was lost"

        # 2. kill -9 while a loop issues splits back to back.
        load.start(srv.endpoint)
        load.wait_acked(load.acked_count() + 1000)
        done = [0]
        stop = threading.Event()

        def splitter() -> None:
            c = kin.make_client(srv.endpoint, retry_throttling=False)
            while not stop.is_set() and done[0] < 12:
                try:
                    sid, key = _widest_open(c, name)
                    c.split_shard(StreamName=name, ShardToSplit=sid, NewStartingHashKey=str(key))
                    done[0] += 1
                except ClientError as e:
                    if e.response["Error"]["Code"] != "ResourceInUseException":
                        raise
                except (BotoCoreError, OSError):
                    return

        t = threading.Thread(target=splitter, daemon=True)
        t.start()
        deadline = time.monotonic() + 30
        while done[0] < 3:
            assert t.is_alive(), "the split loop failed"
            assert time.monotonic() < deadline, "split loop made no progress"
            time.sleep(0.005)
        srv.kill()
        stop.set()
        t.join(timeout=60)
        load.stop()
        srv.start()
        client = kin.make_client(srv.endpoint, retry_throttling=False)
        _check_after_crash(client, name, load)
        assert kin.wait_status(client, name)["OpenShardCount"] >= 3 + done[0]

        # 3. kill -9 while UpdateShardCount (several splits or merges in one request)
        #    may be in flight: the request is sent and the server killed soon after.
        rng = random.Random(7)
        for rnd in range(3):
            open_now = kin.wait_status(client, name)["OpenShardCount"]
            target = open_now + 3 if rnd % 2 == 0 else max((open_now + 1) // 2, 2)
            load.start(srv.endpoint)
            load.wait_acked(load.acked_count() + 200)
            answered: list[dict] = []

            def update(endpoint: str = srv.endpoint, target: int = target) -> None:
                c = kin.make_client(endpoint, retry_throttling=False)
                try:
                    answered.append(c.update_shard_count(StreamName=name, TargetShardCount=target,
                                                         ScalingType="UNIFORM_SCALING"))
                except (BotoCoreError, OSError):
                    pass

            t = threading.Thread(target=update, daemon=True)
            t.start()
            time.sleep(rng.uniform(0, 0.03))  # a kill point, not a wait for the server
            srv.kill()
            t.join(timeout=60)
            load.stop()
            srv.start()
            client = kin.make_client(srv.endpoint, retry_throttling=False)
            _check_after_crash(client, name, load)
            now_open = kin.wait_status(client, name)["OpenShardCount"]
            if answered:
                assert now_open == target, f"UpdateShardCount to {target} acknowledged, {now_open} open after restart"
                assert kin.open_ranges(client, name) == kin.even_split(target)
            else:
                assert now_open in (open_now, target)

        # Resharding still works after recovery.
        shard, at = _widest_open(client, name)
        client.split_shard(StreamName=name, ShardToSplit=shard, NewStartingHashKey=str(at))
        kin.wait_status(client, name)
        kin.assert_shard_map(kin.list_shards_all(client, name))
    except BaseException:
        print(srv.log_tail())
        raise
    finally:
        srv.cleanup()
