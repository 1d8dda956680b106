#!/usr/bin/env bash
# Used for the "Restart and memory" section of docs/benchmarks.md. Usage: scripts/bench-restart.sh [GB]
# Fill a data dir with ~N GB through the public API, then time a cold restart (kill -9, start, /health).
set -u
GB=${1:-10}
D=/tmp/rb-data; rm -rf $D; mkdir -p $D
BIN=${RUNNEL_BIN:-$(cd "$(dirname "$0")/.." && pwd)/target/release/runnel}
$BIN serve --addr 127.0.0.1:4590 --data-dir $D --stream-transition-ms 0 --quotas off --durability none > /tmp/rb.log 2>&1 &
PID=$!
sleep 0.5
start=$(date +%s)
while [ $(du -sb $D | cut -f1) -lt $((GB*1024*1024*1024)) ]; do
  $BIN bench --endpoint-url http://127.0.0.1:4590 --output json put --stream fill --shards 16 --keep --concurrency 4 --batch 100 --record-bytes 10000 --duration 20 > /tmp/rb-put.json 2>/dev/null
  echo "filled: $(du -sh $D | cut -f1) rss_kb=$(grep VmRSS /proc/$PID/status | awk '{print $2}')"
  [ $(( $(date +%s) - start )) -gt 360 ] && break
done
kill -9 $PID; sleep 0.5
for i in 1 2 3; do
  t0=$(date +%s%N)
  $BIN serve --addr 127.0.0.1:4590 --data-dir $D --stream-transition-ms 0 --quotas off > /tmp/rb2.log 2>&1 &
  P2=$!
  until curl -sf http://127.0.0.1:4590/health >/dev/null; do sleep 0.01; done
  t1=$(date +%s%N)
  echo "restart $i: $(( (t1-t0)/1000000 )) ms to /health, data $(du -sh $D | cut -f1), rss_kb=$(grep VmRSS /proc/$P2/status | awk '{print $2}')"
  grep "storage opened" /tmp/rb2.log | tail -1
  kill -9 $P2; sleep 0.3
done
