#!/usr/bin/env python3
"""Memory soak: mixed load against a running runnel, RSS sampled over time.

    scripts/soak-memory.py --endpoint http://127.0.0.1:4567 --pid PID --minutes 30

Load (all bounded in time): one producer at --rate records/s (PutRecords of
100 records of 100 B), three GetRecords readers following the shards' tips,
one reader that re-reads the stream from TRIM_HORIZON over and over, and one
enhanced fan-out consumer (SubscribeToShard, renewed every 5 minutes). Every
--sample-s seconds the server's RSS (from /proc/PID/status) is printed as a
CSV line: elapsed_s,rss_kib,records_put.
"""
import argparse
import os
import threading
import time

import boto3
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="any", aws_secret_access_key="any",
        config=Config(retries={"max_attempts": 10, "mode": "standard"}, max_pool_connections=4),
    )


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--sample-s", type=float, default=30)
    ap.add_argument("--stream", default="soak")
    args = ap.parse_args()
    k = client(args.endpoint)
    k.create_stream(StreamName=args.stream, ShardCount=4)
    k.get_waiter("stream_exists").wait(StreamName=args.stream, WaiterConfig={"Delay": 1})
    desc = k.describe_stream_summary(StreamName=args.stream)["StreamDescriptionSummary"]
    shards = [s["ShardId"] for s in k.list_shards(StreamName=args.stream)["Shards"]]
    deadline = time.time() + args.minutes * 60
    stop = threading.Event()
    put = [0]

    def producer():
        c = client(args.endpoint)
        batch = 100
        interval = batch / args.rate
        n = 0
        next_t = time.time()
        while not stop.is_set():
            recs = [{"Data": os.urandom(50).hex().encode(), "PartitionKey": f"k{n + i}"} for i in range(batch)]
            c.put_records(StreamName=args.stream, Records=recs)
            n += batch
            put[0] = n
            next_t += interval
            time.sleep(max(0.0, next_t - time.time()))

    def tip_reader(shard):
        c = client(args.endpoint)
        it = c.get_shard_iterator(StreamName=args.stream, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
        while not stop.is_set():
            r = c.get_records(ShardIterator=it, Limit=1000)
            it = r["NextShardIterator"]
            time.sleep(0.25)

    def rereader():
        c = client(args.endpoint)
        while not stop.is_set():
            for shard in shards:
                it = c.get_shard_iterator(StreamName=args.stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                while it and not stop.is_set():
                    r = c.get_records(ShardIterator=it, Limit=10000)
                    it = r.get("NextShardIterator")
                    if r.get("MillisBehindLatest", 0) == 0:
                        break
                    time.sleep(0.2)

    def fanout():
        c = client(args.endpoint)
        arn = c.register_stream_consumer(StreamARN=desc["StreamARN"], ConsumerName="soak")["Consumer"]["ConsumerARN"]
        while c.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
            time.sleep(0.5)
        pos = {"Type": "LATEST"}
        while not stop.is_set():
            resp = c.subscribe_to_shard(ConsumerARN=arn, ShardId=shards[0], StartingPosition=pos)
            for ev in resp["EventStream"]:
                e = ev.get("SubscribeToShardEvent")
                if e:
                    pos = {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": e["ContinuationSequenceNumber"]}
                if stop.is_set():
                    break

    threads = [threading.Thread(target=producer, daemon=True), threading.Thread(target=rereader, daemon=True),
               threading.Thread(target=fanout, daemon=True)]
    threads += [threading.Thread(target=tip_reader, args=(s,), daemon=True) for s in shards[:3]]
    for t in threads:
        t.start()
    start = time.time()
    print("elapsed_s,rss_kib,records_put", flush=True)
    while time.time() < deadline:
        print(f"{time.time() - start:.0f},{rss_kib(args.pid)},{put[0]}", flush=True)
        time.sleep(args.sample_s)
    stop.set()
    print(f"{time.time() - start:.0f},{rss_kib(args.pid)},{put[0]}", flush=True)


if __name__ == "__main__":
    main()
