"""Enhanced fan-out: stream consumers and SubscribeToShard push delivery.

boto3 speaks SubscribeToShard over HTTP/1.1 (chunked `application/vnd.amazon.eventstream`).
Each subscription is read by a background thread into a queue, so every wait in a
test has a deadline; the server sends an event at least every 5 s (heartbeat), and
the fan-out client's read timeout (15 s) bounds a server that goes silent.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import os
import queue
import socket
import threading
import time

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError

import kin

pytestmark = pytest.mark.kinesalite_diverges("kinesalite has no enhanced fan-out")

HEARTBEAT_S = 5.0
# Upper bounds for waits (a broken server fails the test instead of hanging it).
EVENT_TIMEOUT_S = 30.0
CONSUMER_TIMEOUT_S = 30.0
# Longer than a heartbeat, so a silent server is a read timeout, not a hang.
FANOUT_READ_TIMEOUT_S = 15
SUBSCRIPTION_TTL_MS = 5 * 60 * 1000
SHARD0 = "shardId-000000000000"
SHARD1 = "shardId-000000000001"


@pytest.fixture(scope="module")
def efo(endpoint):
    """boto3 client for fan-out: a read timeout a little above the heartbeat."""
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name=kin.REGION,
        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
        config=Config(retries={"mode": "standard", "total_max_attempts": 12},
                      connect_timeout=10, read_timeout=FANOUT_READ_TIMEOUT_S),
    )


# ---------------------------------------------------------------- helpers

def consumer_status(client, arn: str) -> str | None:
    try:
        return client.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise


def wait_consumer(client, arn: str, want: str | None) -> None:
    """Poll until the consumer is `want` (None: gone)."""
    deadline = time.monotonic() + CONSUMER_TIMEOUT_S
    while True:
        got = consumer_status(client, arn)
        if got == want:
            return
        assert time.monotonic() < deadline, f"consumer {arn} stuck in {got}, wanted {want}"
        time.sleep(kin.POLL_INTERVAL_S)


def register_active(client, stream: str, name: str = "c1") -> str:
    arn = client.register_stream_consumer(StreamARN=kin.stream_arn(stream), ConsumerName=name)[
        "Consumer"]["ConsumerARN"]
    wait_consumer(client, arn, "ACTIVE")
    return arn


def shard_hash_key(client, stream: str, shard_id: str) -> str:
    """An ExplicitHashKey routed to `shard_id` (its starting hash key)."""
    for s in kin.list_shards_all(client, stream):
        if s["ShardId"] == shard_id:
            return s["HashKeyRange"]["StartingHashKey"]
    raise AssertionError(f"no shard {shard_id}")


def put_many(client, stream: str, n: int, keys: int = 7, tag: str = "r", batch: int = 25) -> list[dict]:
    """Puts n records over `keys` partition keys (PutRecords batches, every fourth
    batch as single PutRecord calls). Returns one dict per record, in put order:
    {key, data, shard, seq}."""
    out = []
    i = 0
    while i < n:
        entries = [{"PartitionKey": f"k{j % keys}", "Data": f"{tag}-{j}".encode()}
                   for j in range(i, min(n, i + batch))]
        if (i // batch) % 4 == 3:
            results = [client.put_record(StreamName=stream, **e) for e in entries]
        else:
            results = kin.put_all(client, stream, entries)
        for e, r in zip(entries, results):
            out.append({"key": e["PartitionKey"], "data": e["Data"], "shard": r["ShardId"],
                        "seq": r["SequenceNumber"]})
        i += batch
    return out


def put_to_shard(client, stream: str, shard_id: str, data: bytes) -> dict:
    r = client.put_record(StreamName=stream, PartitionKey="sentinel", Data=data,
                          ExplicitHashKey=shard_hash_key(client, stream, shard_id))
    assert r["ShardId"] == shard_id
    return {"key": "sentinel", "data": data, "shard": shard_id, "seq": r["SequenceNumber"]}


def brief(records) -> list[tuple]:
    """Comparable form of received records or put results."""
    return [(r.get("PartitionKey", r.get("key")), bytes(r.get("Data", r.get("data"))),
             r.get("SequenceNumber", r.get("seq"))) for r in records]


class Subscription:
    """One SubscribeToShard event stream, read by a daemon thread into a queue."""

    def __init__(self, client, consumer_arn: str, shard_id: str, position: dict):
        resp = client.subscribe_to_shard(ConsumerARN=consumer_arn, ShardId=shard_id,
                                         StartingPosition=position)
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
        self.shard_id = shard_id
        self.stream = resp["EventStream"]
        self.queue: queue.Queue = queue.Queue()
        self.events: list[dict] = []     # every SubscribeToShardEvent taken so far
        self.buffered: list[dict] = []   # records of taken events not yet returned by take()
        self.ended = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for ev in self.stream:
                self.queue.put(("event", ev))
            self.queue.put(("end", None))
        except Exception as e:  # EventStreamError, a closed socket, a read timeout
            self.queue.put(("error", e))

    def next_event(self, timeout: float = EVENT_TIMEOUT_S) -> dict | None:
        """The next SubscribeToShardEvent, or None when the stream has ended."""
        assert not self.ended, "the event stream already ended"
        try:
            kind, value = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event on {self.shard_id} within {timeout} s") from None
        if kind == "end":
            self.ended = True
            return None
        if kind == "error":
            self.ended = True
            raise value
        assert set(value) == {"SubscribeToShardEvent"}, value
        ev = value["SubscribeToShardEvent"]
        self._check_continuation(ev)
        self.events.append(ev)
        self.buffered.extend(ev["Records"])
        return ev

    def _check_continuation(self, ev: dict) -> None:
        seqs = [r["SequenceNumber"] for r in ev["Records"]]
        kin.assert_increasing(seqs)
        assert ev["MillisBehindLatest"] >= 0
        cont = ev.get("ContinuationSequenceNumber")
        if cont is None:
            assert ev.get("ChildShards"), f"null ContinuationSequenceNumber without ChildShards: {ev}"
            return
        cont_i = kin.assert_seq(cont)
        if seqs:
            assert cont_i >= int(seqs[-1]), f"continuation {cont} before the event's last record {seqs[-1]}"
        prev = [e["ContinuationSequenceNumber"] for e in self.events if e.get("ContinuationSequenceNumber")]
        if prev:
            assert cont_i >= int(prev[-1]), f"continuation went back: {prev[-1]} -> {cont}"
            if seqs:
                assert int(seqs[0]) > int(prev[-1]), f"record {seqs[0]} not after continuation {prev[-1]}"
                assert cont_i > int(prev[-1])

    def take(self, n: int, timeout: float = EVENT_TIMEOUT_S) -> list[dict]:
        """Exactly the next n records (waiting for events as needed)."""
        deadline = time.monotonic() + timeout
        while len(self.buffered) < n:
            left = deadline - time.monotonic()
            assert left > 0, f"{len(self.buffered)} of {n} records on {self.shard_id} within {timeout} s"
            ev = self.next_event(left)
            assert ev is not None, f"stream ended after {len(self.buffered)} of {n} records"
            assert not ev.get("ChildShards"), f"shard ended after {len(self.buffered)} of {n} records"
        out, self.buffered = self.buffered[:n], self.buffered[n:]
        return out

    def until_end(self, timeout: float = EVENT_TIMEOUT_S) -> list[dict]:
        """The events left until the stream ends."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"stream on {self.shard_id} did not end within {timeout} s"
            ev = self.next_event(left)
            if ev is None:
                return out
            out.append(ev)

    @property
    def continuation(self) -> str:
        return [e["ContinuationSequenceNumber"] for e in self.events if e.get("ContinuationSequenceNumber")][-1]

    def close(self) -> None:
        """Drops the connection (shutdown wakes the reader thread blocked in recv)."""
        raw = self.stream._raw_stream
        for path in (("_connection", "sock"), ("_fp", "fp", "raw", "_sock")):
            obj = raw
            for attr in path:
                obj = getattr(obj, attr, None)
            if isinstance(obj, socket.socket):
                try:
                    obj.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                break
        self.stream.close()
        self.thread.join(timeout=EVENT_TIMEOUT_S)


def subscribe_when_free(client, consumer_arn: str, shard_id: str, position: dict) -> Subscription:
    """SubscribeToShard, retrying ResourceInUseException until the server has
    noticed that the previous subscription is gone."""
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while True:
        try:
            return Subscription(client, consumer_arn, shard_id, position)
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceInUseException" or time.monotonic() > deadline:
                raise
        time.sleep(kin.POLL_INTERVAL_S)


@pytest.fixture
def subs():
    """Subscriptions opened by a test; closed afterwards."""
    opened: list[Subscription] = []

    def open_(*args, **kwargs) -> Subscription:
        s = Subscription(*args, **kwargs)
        opened.append(s)
        return s

    open_.opened = opened
    yield open_
    for s in opened:
        try:
            s.close()
        except Exception:
            pass


# ---------------------------------------------------------------- consumers

def test_consumer_lifecycle_and_listing(kinesis, endpoint, stream):
    arn = kin.stream_arn(stream)
    r = kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="first")["Consumer"]
    assert r["ConsumerName"] == "first"
    assert r["ConsumerStatus"] == "CREATING"
    assert r["ConsumerARN"].startswith(f"{arn}/consumer/first:")
    created = int(r["ConsumerARN"].rsplit(":", 1)[1])
    assert abs(created - r["ConsumerCreationTimestamp"].timestamp()) < 1
    wait_consumer(kinesis, r["ConsumerARN"], "ACTIVE")
    kin.expect_error("ResourceInUseException", kinesis.register_stream_consumer,
                     StreamARN=arn, ConsumerName="first")

    by_arn = kinesis.describe_stream_consumer(ConsumerARN=r["ConsumerARN"])["ConsumerDescription"]
    by_name = kinesis.describe_stream_consumer(StreamARN=arn, ConsumerName="first")["ConsumerDescription"]
    assert by_arn == by_name
    assert by_arn["StreamARN"] == arn and by_arn["ConsumerARN"] == r["ConsumerARN"]
    kin.expect_error("ResourceNotFoundException", kinesis.describe_stream_consumer,
                     StreamARN=arn, ConsumerName="nobody")
    kin.expect_error("ResourceNotFoundException", kinesis.describe_stream_consumer,
                     ConsumerARN=f"{arn}/consumer/nobody:1700000000")

    names = ["first"] + [f"c{i:02d}" for i in range(1, 20)]
    for n in names[1:]:
        kinesis.register_stream_consumer(StreamARN=arn, ConsumerName=n)
    # botocore's standard mode retries LimitExceededException as throttling: ask once.
    once = kin.make_client(endpoint, retry_throttling=False)
    kin.expect_error("LimitExceededException", once.register_stream_consumer,
                     StreamARN=arn, ConsumerName="twenty-first")

    listed, token = [], None
    for _ in range(20):
        kw = {"NextToken": token} if token else {}
        page = kinesis.list_stream_consumers(StreamARN=arn, MaxResults=3, **kw)
        assert len(page["Consumers"]) <= 3
        listed.extend(page["Consumers"])
        token = page.get("NextToken")
        if not token:
            break
    assert sorted(c["ConsumerName"] for c in listed) == sorted(names)
    assert all(c["ConsumerARN"].startswith(f"{arn}/consumer/") for c in listed)

    kinesis.deregister_stream_consumer(StreamARN=arn, ConsumerName="c01")
    kinesis.deregister_stream_consumer(ConsumerARN=r["ConsumerARN"])
    wait_consumer(kinesis, r["ConsumerARN"], None)
    left = kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
    assert "first" not in {c["ConsumerName"] for c in left}


# ---------------------------------------------------------------- delivery

def test_subscribe_delivers_every_record_in_order_once(kinesis, efo, make_stream, subs):
    stream = make_stream(2)
    c1, c2, c3 = (register_active(kinesis, stream, n) for n in ("main", "mid", "end"))
    live = {sh: subs(efo, c1, sh, {"Type": "LATEST"}) for sh in (SHARD0, SHARD1)}

    put: list[dict] = []
    errors: list[BaseException] = []

    def producer():
        try:
            put.extend(put_many(kinesis, stream, 300, keys=9))
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)

    t = threading.Thread(target=producer, daemon=True)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive() and not errors, errors
    assert {p["shard"] for p in put} == {SHARD0, SHARD1}

    for sh, sub in live.items():
        want = [p for p in put if p["shard"] == sh]  # per-shard put order is sequence order
        assert brief(sub.take(len(want))) == brief(want)
        # Nothing more was delivered (no duplicates): the next record is a sentinel.
        sentinel = put_to_shard(kinesis, stream, sh, b"sentinel-" + sh.encode())
        assert brief(sub.take(1)) == brief([sentinel])

    # Resume from the middle: AFTER_SEQUENCE_NUMBER = an event's continuation.
    sub0 = live[SHARD0]
    with_records = [i for i, e in enumerate(sub0.events) if e["Records"]]
    assert with_records
    k = with_records[len(with_records) // 2]
    delivered_through_k = sum(len(e["Records"]) for e in sub0.events[:k + 1])
    all0 = [r for e in sub0.events for r in e["Records"]]
    resumed = subs(efo, c2, SHARD0, {"Type": "AFTER_SEQUENCE_NUMBER",
                                     "SequenceNumber": sub0.events[k]["ContinuationSequenceNumber"]})
    assert brief(resumed.take(len(all0) - delivered_through_k)) == brief(all0[delivered_through_k:])

    # Resume from the last continuation: exactly the records put after it.
    tail = subs(efo, c3, SHARD0, {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": sub0.continuation})
    new = [put_to_shard(kinesis, stream, SHARD0, f"after-{i}".encode()) for i in range(5)]
    assert brief(tail.take(5)) == brief(new)
    assert brief(sub0.take(5)) == brief(new)


@pytest.mark.parametrize("position", ["TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER",
                                      "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP"])
def test_starting_positions(kinesis, efo, stream, subs, clock, position):
    batch_a = put_many(kinesis, stream, 5, tag="a", batch=5)
    a_arrival = kin.read_shard(kinesis, stream, SHARD0)[0]["ApproximateArrivalTimestamp"]
    clock.advance(2000)  # batch B arrives 2 s after batch A on the server's clock
    batch_b = put_many(kinesis, stream, 5, tag="b", batch=5)
    before = batch_a + batch_b
    start, expected = {
        "TRIM_HORIZON": ({}, before),
        "LATEST": ({}, []),
        "AT_SEQUENCE_NUMBER": ({"SequenceNumber": before[3]["seq"]}, before[3:]),
        "AFTER_SEQUENCE_NUMBER": ({"SequenceNumber": before[3]["seq"]}, before[4:]),
        "AT_TIMESTAMP": ({"Timestamp": a_arrival + dt.timedelta(seconds=1)}, batch_b),
    }[position]
    consumer = register_active(kinesis, stream)
    sub = subs(efo, consumer, SHARD0, {"Type": position, **start})
    assert brief(sub.take(len(expected))) == brief(expected)
    # Then live records follow without a gap or a repeat.
    after = put_many(kinesis, stream, 3, tag="c", batch=3)
    assert brief(sub.take(3)) == brief(after)


def test_subscribe_errors(kinesis, efo, stream, subs):
    consumer = register_active(kinesis, stream)
    kin.expect_error("ResourceNotFoundException", efo.subscribe_to_shard, ConsumerARN=consumer,
                     ShardId="shardId-000000000007", StartingPosition={"Type": "LATEST"})
    kin.expect_error("ResourceNotFoundException", efo.subscribe_to_shard,
                     ConsumerARN=f"{kin.stream_arn(stream)}/consumer/nobody:1700000000",
                     ShardId=SHARD0, StartingPosition={"Type": "LATEST"})


# ---------------------------------------------------------------- one subscription per consumer and shard

def test_second_subscription_in_use_until_first_closed(kinesis, efo, make_stream, subs):
    stream = make_stream(2)
    consumer = register_active(kinesis, stream)
    other = register_active(kinesis, stream, "other")
    first = subs(efo, consumer, SHARD0, {"Type": "LATEST"})
    kin.expect_error("ResourceInUseException", efo.subscribe_to_shard, ConsumerARN=consumer,
                     ShardId=SHARD0, StartingPosition={"Type": "TRIM_HORIZON"})
    # Other shards of the same consumer, and other consumers of the same shard, are free.
    subs(efo, consumer, SHARD1, {"Type": "LATEST"})
    subs(efo, other, SHARD0, {"Type": "LATEST"})

    rec = put_to_shard(kinesis, stream, SHARD0, b"one")
    assert brief(first.take(1)) == brief([rec])
    first.close()
    # The server notices the dropped connection (at the latest at the next heartbeat).
    second = subscribe_when_free(efo, consumer, SHARD0, {"Type": "AFTER_SEQUENCE_NUMBER",
                                                         "SequenceNumber": rec["seq"]})
    subs.opened.append(second)
    rec2 = put_to_shard(kinesis, stream, SHARD0, b"two")
    assert brief(second.take(1)) == brief([rec2])


def test_subscription_that_ended_frees_the_shard(kinesis, efo, stream, subs):
    consumer = register_active(kinesis, stream)
    first = subs(efo, consumer, SHARD0, {"Type": "TRIM_HORIZON"})
    kinesis.split_shard(StreamName=stream, ShardToSplit=SHARD0, NewStartingHashKey=str(2**127))
    kin.wait_status(kinesis, stream, "ACTIVE")
    events = first.until_end()
    assert events and events[-1].get("ChildShards")
    # Ended by the server: the shard is free again at once (no waiting for a heartbeat).
    again = subs(efo, consumer, SHARD0, {"Type": "TRIM_HORIZON"})
    events = again.until_end()
    assert [e for e in events if e["Records"]] == [] and events[-1].get("ChildShards")


# ---------------------------------------------------------------- resharding

def test_split_ends_parent_with_child_shards(kinesis, efo, stream, subs):
    consumer = register_active(kinesis, stream)
    parent = subs(efo, consumer, SHARD0, {"Type": "TRIM_HORIZON"})
    before = put_many(kinesis, stream, 60, keys=12, tag="pre")
    kinesis.split_shard(StreamName=stream, ShardToSplit=SHARD0, NewStartingHashKey=str(2**127))
    kin.wait_status(kinesis, stream, "ACTIVE")

    events = parent.until_end()
    got = [r for e in parent.events for r in e["Records"]]
    assert brief(got) == brief(before)
    last = events[-1]
    assert last["Records"] == [] or brief(last["Records"]) == brief(before[-len(last["Records"]):])
    assert last.get("ContinuationSequenceNumber") is None
    assert all(not e.get("ChildShards") for e in parent.events[:-1])
    shards = {s["ShardId"]: s for s in kin.list_shards_all(kinesis, stream)}
    children = sorted(sid for sid, s in shards.items() if SHARD0 in kin.parents_of(s))
    assert len(children) == 2
    assert sorted(c["ShardId"] for c in last["ChildShards"]) == children
    for c in last["ChildShards"]:
        assert c["ParentShards"] == [SHARD0]
        assert c["HashKeyRange"] == shards[c["ShardId"]]["HashKeyRange"]

    after = put_many(kinesis, stream, 60, keys=12, tag="post")
    assert {p["shard"] for p in after} == set(children)
    for child in children:
        want = [p for p in after if p["shard"] == child]
        sub = subs(efo, consumer, child, {"Type": "TRIM_HORIZON"})
        got = sub.take(len(want))
        assert brief(got) == brief(want)
        for key in {p["key"] for p in want}:  # per-key order, spelled out
            assert [r["Data"] for r in got if r["PartitionKey"] == key] == \
                   [p["data"] for p in want if p["key"] == key]

    # Resuming the closed parent after its last record: straight to ChildShards.
    resumed = subs(efo, consumer, SHARD0, {"Type": "AFTER_SEQUENCE_NUMBER",
                                           "SequenceNumber": before[-1]["seq"]})
    events = resumed.until_end()
    assert all(not e["Records"] for e in events)
    assert sorted(c["ShardId"] for c in events[-1]["ChildShards"]) == children


def test_merge_ends_both_parents(kinesis, efo, make_stream, subs):
    stream = make_stream(2)
    consumer = register_active(kinesis, stream)
    parents = {sh: subs(efo, consumer, sh, {"Type": "LATEST"}) for sh in (SHARD0, SHARD1)}
    before = put_many(kinesis, stream, 40, keys=8, tag="pre")
    kinesis.merge_shards(StreamName=stream, ShardToMerge=SHARD0, AdjacentShardToMerge=SHARD1)
    kin.wait_status(kinesis, stream, "ACTIVE")
    child = [s for s in kin.list_shards_all(kinesis, stream) if not kin.is_closed(s)]
    assert len(child) == 1
    for sh, sub in parents.items():
        sub.until_end()
        assert brief([r for e in sub.events for r in e["Records"]]) == \
               brief([p for p in before if p["shard"] == sh])
        final = sub.events[-1]["ChildShards"]
        assert [c["ShardId"] for c in final] == [child[0]["ShardId"]]
        assert sorted(final[0]["ParentShards"]) == [SHARD0, SHARD1]
    after = put_many(kinesis, stream, 20, keys=8, tag="post")
    sub = subs(efo, consumer, child[0]["ShardId"], {"Type": "TRIM_HORIZON"})
    assert brief(sub.take(20)) == brief(after)


# ---------------------------------------------------------------- ending subscriptions

def test_deregister_ends_subscriptions(kinesis, efo, make_stream, subs):
    stream = make_stream(2)
    consumer = register_active(kinesis, stream)
    keep = register_active(kinesis, stream, "keep")
    doomed = [subs(efo, consumer, sh, {"Type": "LATEST"}) for sh in (SHARD0, SHARD1)]
    kept = subs(efo, keep, SHARD0, {"Type": "LATEST"})
    kinesis.deregister_stream_consumer(ConsumerARN=consumer)
    for sub in doomed:
        sub.until_end(timeout=2 * HEARTBEAT_S + 5)
    wait_consumer(kinesis, consumer, None)
    kin.expect_error("ResourceNotFoundException", efo.subscribe_to_shard, ConsumerARN=consumer,
                     ShardId=SHARD0, StartingPosition={"Type": "LATEST"})
    # The other consumer is untouched.
    rec = put_to_shard(kinesis, stream, SHARD0, b"still here")
    assert brief(kept.take(1)) == brief([rec])


def test_delete_stream_with_consumers_needs_enforce(kinesis, efo, make_stream, subs):
    stream = make_stream(1)
    consumer = register_active(kinesis, stream)
    sub = subs(efo, consumer, SHARD0, {"Type": "LATEST"})
    kin.expect_error("ResourceInUseException", kinesis.delete_stream, StreamName=stream)
    assert kin.wait_status(kinesis, stream, "ACTIVE")
    kinesis.delete_stream(StreamName=stream, EnforceConsumerDeletion=True)
    try:
        sub.until_end(timeout=2 * HEARTBEAT_S + 5)
    except Exception as e:  # an exception event (ResourceNotFound) also ends it
        assert "ResourceNotFound" in repr(e) or "ResourceInUse" in repr(e), e
    kin.wait_gone(kinesis, stream)


def test_subscription_ends_after_five_minutes(kinesis, efo, stream, subs, clock):
    consumer = register_active(kinesis, stream)
    sub = subs(efo, consumer, SHARD0, {"Type": "LATEST"})
    clock.advance(SUBSCRIPTION_TTL_MS - 2000)
    rec = put_to_shard(kinesis, stream, SHARD0, b"at 4:58")
    assert brief(sub.take(1)) == brief([rec])  # still alive just before 5 minutes
    clock.advance(2001)
    # Ends at the next event or heartbeat (at most one more event before the end).
    events = sub.until_end(timeout=HEARTBEAT_S + 3)
    assert len(events) <= 1, events
    # And the consumer can subscribe again right away.
    again = subs(efo, consumer, SHARD0, {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": rec["seq"]})
    rec2 = put_to_shard(kinesis, stream, SHARD0, b"new subscription")
    assert brief(again.take(1)) == brief([rec2])


# ---------------------------------------------------------------- a subscriber that stops reading

class StalledSubscriber:
    """A raw HTTP/1.1 SubscribeToShard whose response nobody reads (small receive
    buffer, so the server feels the back-pressure early)."""

    def __init__(self, port: int, consumer_arn: str, shard_id: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=EVENT_TIMEOUT_S)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.settimeout(EVENT_TIMEOUT_S)
        sock.connect(("127.0.0.1", port))
        self.conn.sock = sock
        body = json.dumps({"ConsumerARN": consumer_arn, "ShardId": shard_id,
                           "StartingPosition": {"Type": "TRIM_HORIZON"}}).encode()
        self.conn.request("POST", "/", body=body, headers={
            "Content-Type": kin.JSON_CT, "X-Amz-Target": kin.TARGET_PREFIX + "SubscribeToShard",
            **kin._auth_headers()})
        self.resp = None
        self.buffer = EventStreamBuffer()

    def records(self, n: int, timeout: float = 120) -> list[tuple[str, str]]:
        """Starts reading at last: the next n records as (sequence number, data)."""
        if self.resp is None:
            self.resp = self.conn.getresponse()
            assert self.resp.status == 200, self.resp.read(2000)
            assert self.resp.getheader("Content-Type") == "application/vnd.amazon.eventstream"
        deadline = time.monotonic() + timeout
        out: list[tuple[str, str]] = []
        while len(out) < n:
            assert time.monotonic() < deadline, f"{len(out)} of {n} records within {timeout} s"
            chunk = self.resp.read1(1 << 20)
            assert chunk, f"stream ended after {len(out)} of {n} records"
            self.buffer.add_data(chunk)
            for msg in self.buffer:
                h = msg.headers
                assert h[":message-type"] == "event", (h, msg.payload[:500])
                if h[":event-type"] == "SubscribeToShardEvent":
                    ev = json.loads(msg.payload)
                    out.extend((r["SequenceNumber"], r["Data"]) for r in ev["Records"])
        return out

    def close(self) -> None:
        self.conn.close()


def vm_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def put_records_body(stream: str, count: int, record_bytes: int) -> bytes:
    data = base64.b64encode(os.urandom(record_bytes)).decode()
    return json.dumps({"StreamName": stream, "Records": [
        {"PartitionKey": f"k{i % 7}", "Data": data} for i in range(count)]}).encode()


@pytest.fixture
def own_server():
    proc = kin.RunnelProcess(extra_args=["--durability", "none"]).start()
    try:
        yield proc
    finally:
        proc.kill()
        proc.cleanup()


def _stalled_setup(own_server):
    client = kin.make_client(own_server.endpoint)
    fo = boto3.client("kinesis", endpoint_url=own_server.endpoint, region_name=kin.REGION,
                      aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                      config=Config(read_timeout=FANOUT_READ_TIMEOUT_S))
    client.create_stream(StreamName="s", ShardCount=1)
    kin.wait_status(client, "s", "ACTIVE")
    stalled_arn = register_active(client, "s", "stalled")
    stalled = StalledSubscriber(own_server.port, stalled_arn, SHARD0)
    # The server has the subscription once the consumer's shard is taken.
    kin.expect_error("ResourceInUseException", fo.subscribe_to_shard, ConsumerARN=stalled_arn,
                     ShardId=SHARD0, StartingPosition={"Type": "LATEST"})
    return client, fo, stalled


@pytest.mark.runnel_only
def test_stalled_subscriber_blocks_nobody(own_server):
    client, fo, stalled = _stalled_setup(own_server)
    try:
        reader_arn = register_active(client, "s", "reader")
        reader = Subscription(fo, reader_arn, SHARD0, {"Type": "TRIM_HORIZON"})
        puts_count, per_put, record_bytes = 100, 500, 1024  # 50 MB
        body = put_records_body("s", per_put, record_bytes)
        first_seq = None
        for i in range(puts_count):
            # Bounded: a producer blocked behind the stalled subscriber would time out here.
            status, _h, resp = kin.raw_request(own_server.endpoint, "PutRecords", body, timeout=30)
            assert status == 200, resp[:500]
            out = json.loads(resp)
            assert out["FailedRecordCount"] == 0
            first_seq = first_seq or out["Records"][0]["SequenceNumber"]
        last_seq = out["Records"][-1]["SequenceNumber"]
        total = puts_count * per_put
        # The reading consumer gets everything while the other one stalls.
        got = reader.take(total, timeout=240)
        assert got[0]["SequenceNumber"] == first_seq and got[-1]["SequenceNumber"] == last_seq
        reader.close()
        # The stalled one, reading at last, resumes exactly where it stopped.
        recs = stalled.records(total, timeout=240)
        assert len(recs) >= total
        seqs = [s for s, _ in recs[:total]]
        assert seqs[0] == first_seq and seqs[-1] == last_seq
        kin.assert_increasing(seqs)
    finally:
        stalled.close()


@pytest.mark.runnel_only
def test_stalled_subscriber_memory_is_bounded(own_server):
    client, _fo, stalled = _stalled_setup(own_server)
    try:
        pid = own_server.proc.pid
        puts_count, per_put, record_bytes = 60, 500, 10 * 1024  # ~300 MB in 5 MB requests
        body = put_records_body("s", per_put, record_bytes)
        start_mb = peak_mb = vm_rss_mb(pid)
        for _ in range(puts_count):
            status, _h, resp = kin.raw_request(own_server.endpoint, "PutRecords", body, timeout=30)
            assert status == 200, resp[:500]
            peak_mb = max(peak_mb, vm_rss_mb(pid))
        assert peak_mb < start_mb + 150, f"RSS grew {peak_mb - start_mb:.0f} MB (from {start_mb:.0f} MB)"
    finally:
        stalled.close()


# ---------------------------------------------------------------- raw wire: HTTP/1.1 and h2c, JSON and CBOR

def _raw_subscribe_records(chunks, encoding: str, n: int) -> list[dict]:
    """Parses an event stream from `chunks` until n records arrived: the first
    message is `initial-response`, every event carries the request's encoding."""
    import cbor2

    content_type = kin.CBOR_CT if encoding == "cbor" else kin.JSON_CT
    decode = cbor2.loads if encoding == "cbor" else json.loads
    buf = EventStreamBuffer()
    kinds: list[str] = []
    records: list[dict] = []
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    for chunk in chunks:
        buf.add_data(chunk)
        for msg in buf:
            h = msg.headers
            assert h[":message-type"] == "event", (h, msg.payload[:500])
            assert h[":content-type"] == content_type, h
            kinds.append(h[":event-type"])
            if h[":event-type"] == "SubscribeToShardEvent":
                ev = decode(msg.payload)
                for r in ev["Records"]:
                    data = r["Data"] if encoding == "cbor" else base64.b64decode(r["Data"])
                    records.append({"PartitionKey": r["PartitionKey"], "Data": data,
                                    "SequenceNumber": r["SequenceNumber"]})
        if len(records) >= n:
            assert kinds[0] == "initial-response" and set(kinds[1:]) == {"SubscribeToShardEvent"}, kinds
            return records
        assert time.monotonic() < deadline, f"{len(records)} of {n} records"
    raise AssertionError(f"stream ended after {len(records)} of {n} records")


@pytest.mark.parametrize("transport", ["http1", "h2c"])
@pytest.mark.parametrize("encoding", ["json", "cbor"])
def test_raw_subscribe_wire(kinesis, endpoint, stream, transport, encoding):
    import cbor2
    import httpx

    consumer = register_active(kinesis, stream)
    sent = put_many(kinesis, stream, 6, tag=f"{transport}-{encoding}")
    payload = {"ConsumerARN": consumer, "ShardId": SHARD0, "StartingPosition": {"Type": "TRIM_HORIZON"}}
    body = cbor2.dumps(payload) if encoding == "cbor" else json.dumps(payload).encode()
    headers = {"Content-Type": kin.CBOR_CT if encoding == "cbor" else kin.JSON_CT,
               "X-Amz-Target": kin.TARGET_PREFIX + "SubscribeToShard", **kin._auth_headers()}
    with httpx.Client(http1=transport == "http1", http2=transport == "h2c",
                      timeout=FANOUT_READ_TIMEOUT_S) as client:
        with client.stream("POST", endpoint + "/", content=body, headers=headers) as r:
            assert r.status_code == 200, r.read()[:500]
            assert r.http_version == ("HTTP/2" if transport == "h2c" else "HTTP/1.1")
            assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
            got = _raw_subscribe_records(r.iter_raw(), encoding, len(sent))
    assert brief(got) == brief(sent)
