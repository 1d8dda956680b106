#!/usr/bin/env bash
# Runs the same Kinesis load against runnel and its peers on this machine and
# writes the comparison to stdout and docs/benchmarks.md.
#
#   scripts/bench-peers.sh [--duration S] [--repeat N] [--peers "runnel kinesalite ..."]
#                          [--shapes "1x100 100x1000 500x100"] [--shape-duration S]
#                          [--no-docs] [--skip-install]
#
# Peers are installed under bench-out/peers (gitignored): kinesalite and
# kinesis-local from npm, ferrokinesis from crates.io. Each run starts a fresh
# server on its own port, runs `bench putget` (put for --duration, then read
# everything back and verify it), and stops the server. Then, for each request
# shape RECORDSxBYTES, a fresh server takes PutRecords of that shape from wrk
# (an independent load generator written in C; scripts/bench/putrecords.lua)
# over 16 connections. Figures are medians over --repeat runs. A peer that
# fails to install or to run is kept in the table, marked, and the script
# carries on. Only the part of docs/benchmarks.md between the bench-peers
# markers is rewritten; the hand-written sections around it stay.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/bench-out"
PEERS_DIR="$OUT/peers"
RESULTS="$OUT/results"
DOC="$ROOT/docs/benchmarks.md"

DURATION=20
REPEAT=3
SHARDS=4
CONCURRENCY=4
BATCH=500
RECORD_BYTES=100
PEERS="runnel kinesalite ferrokinesis ferrokinesis-durable kinesis-local"
WRITE_DOC=1
INSTALL=1
PORT_BASE=14700
SHAPES="1x100 100x1000 500x100"
SHAPE_DURATION=10
SHAPE_CONNECTIONS=16

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --peers) PEERS="$2"; shift 2 ;;
    --shapes) SHAPES="$2"; shift 2 ;;
    --shape-duration) SHAPE_DURATION="$2"; shift 2 ;;
    --no-docs) WRITE_DOC=0; shift ;;
    --skip-install) INSTALL=0; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { echo "[bench-peers] $*" >&2; }

# ---- servers we start are always stopped -----------------------------------
SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  # The server runs in its own process group (setsid), so npm/node children go too.
  kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  # Some servers wait forever for idle keep-alive connections on SIGTERM.
  kill -KILL -- "-$SERVER_PID" 2>/dev/null || kill -KILL "$SERVER_PID" 2>/dev/null
  wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  local p=$PORT_BASE
  while ! port_free "$p"; do p=$((p + 1)); done
  PORT_BASE=$((p + 1))
  echo "$p"
}

wait_port() { # port timeout_s
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt "$deadline" ]; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# ---- installation -----------------------------------------------------------
mkdir -p "$PEERS_DIR" "$RESULTS"
declare -A STATUS VERSION CMDLINE
NPM_BIN="$PEERS_DIR/npm/node_modules"
FERRO="$PEERS_DIR/ferrokinesis/bin/ferrokinesis"
RUNNEL="$ROOT/target/release/runnel"

install_npm() {
  if [ -f "$NPM_BIN/kinesalite/cli.js" ] && [ -f "$NPM_BIN/kinesis-local/main.js" ]; then return 0; fi
  [ "$INSTALL" = 1 ] || return 1
  log "installing kinesalite and kinesis-local from npm"
  npm install --no-audit --no-fund --prefix "$PEERS_DIR/npm" kinesalite kinesis-local \
    >"$OUT/install-npm.log" 2>&1
}

install_ferro() {
  [ -x "$FERRO" ] && return 0
  [ "$INSTALL" = 1 ] || return 1
  log "installing ferrokinesis from crates.io (a few minutes)"
  CARGO_TARGET_DIR="$PEERS_DIR/ferro-target" cargo install ferrokinesis --locked \
    --root "$PEERS_DIR/ferrokinesis" >"$OUT/install-ferrokinesis.log" 2>&1
}

build_runnel() {
  log "building runnel-bench and runnel (release)"
  # The load generator alone first, so peers can be measured even if the
  # server does not build at this moment.
  (cd "$ROOT" && cargo build --release -p runnel-bench) >"$OUT/build-bench.log" 2>&1
  (cd "$ROOT" && cargo build --release -p runnel) >"$OUT/build-runnel.log" 2>&1
}

install_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  [ "$INSTALL" = 1 ] || return 1
  log "installing wrk with apt-get"
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  { "${SUDO[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq wrk; } \
    >"$OUT/install-wrk.log" 2>&1
}

npm_ok=0; ferro_ok=0; runnel_ok=0; wrk_ok=0
install_wrk && wrk_ok=1 || log "wrk install failed: request shapes are skipped"
install_npm && npm_ok=1 || log "npm install failed (see $OUT/install-npm.log)"
case " $PEERS " in *" ferrokinesis"*) install_ferro && ferro_ok=1 || log "ferrokinesis install failed" ;; esac
build_runnel && runnel_ok=1 || log "runnel build failed (see $OUT/build-runnel.log)"
if [ "$runnel_ok" = 1 ] && ! "$RUNNEL" serve --help >/dev/null 2>&1; then
  log "runnel serve is not available"; runnel_ok=0
fi

# The load generator: `runnel bench` if this build has it, else runnel-bench.
if "$RUNNEL" bench --help >/dev/null 2>&1; then
  BENCH=("$RUNNEL" bench)
elif [ -x "$ROOT/target/release/runnel-bench" ]; then
  BENCH=("$ROOT/target/release/runnel-bench")
else
  log "no bench binary (build failed?)"; exit 1
fi

npm_version() { sed -n 's/^ *"version" *: *"\([^"]*\)".*/\1/p' "$NPM_BIN/$1/package.json" 2>/dev/null | head -1; }
[ "$npm_ok" = 1 ] && VERSION[kinesalite]="$(npm_version kinesalite)" && VERSION[kinesis-local]="$(npm_version kinesis-local)"
[ "$ferro_ok" = 1 ] && VERSION[ferrokinesis]="$("$FERRO" --version 2>/dev/null | awk '{print $NF}')"
VERSION[ferrokinesis]="${VERSION[ferrokinesis]:-0.7.0}"
VERSION[ferrokinesis-durable]="${VERSION[ferrokinesis]}"
VERSION[runnel]="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
# Built from the working tree, which may hold others' uncommitted work.
[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && VERSION[runnel]+="-dirty"

# ---- one server ---------------------------------------------------------------
start_server() { # peer port datadir
  local peer=$1 port=$2 dir=$3 cmd
  case "$peer" in
    runnel)
      [ "$runnel_ok" = 1 ] || return 1
      cmd="target/release/runnel serve --addr 127.0.0.1:$port --data-dir $dir --stream-transition-ms 0 --quotas off"
      setsid "$RUNNEL" serve --addr "127.0.0.1:$port" --data-dir "$dir" --stream-transition-ms 0 --quotas off \
        >"$dir.log" 2>&1 &
      ;;
    kinesalite)
      [ "$npm_ok" = 1 ] || return 1
      cmd="node node_modules/kinesalite/cli.js --port $port --createStreamMs 0 --deleteStreamMs 0 --shardLimit 1000"
      setsid node "$NPM_BIN/kinesalite/cli.js" --port "$port" --createStreamMs 0 --deleteStreamMs 0 \
        --shardLimit 1000 >"$dir.log" 2>&1 &
      ;;
    ferrokinesis)
      [ "$ferro_ok" = 1 ] || return 1
      cmd="ferrokinesis --port $port --create-stream-ms 0 --delete-stream-ms 0 --shard-limit 1000 --log-level warn"
      setsid "$FERRO" --port "$port" --create-stream-ms 0 --delete-stream-ms 0 --shard-limit 1000 \
        --log-level warn >"$dir.log" 2>&1 &
      ;;
    ferrokinesis-durable)
      [ "$ferro_ok" = 1 ] || return 1
      cmd="ferrokinesis --port $port --state-dir $dir --create-stream-ms 0 --delete-stream-ms 0 --shard-limit 1000 --log-level warn"
      setsid "$FERRO" --port "$port" --state-dir "$dir" --create-stream-ms 0 --delete-stream-ms 0 \
        --shard-limit 1000 --log-level warn >"$dir.log" 2>&1 &
      ;;
    kinesis-local)
      [ "$npm_ok" = 1 ] || return 1
      # kinesis-local reads server.json (its TLS cert) from the working directory.
      cmd="(cd node_modules/kinesis-local && KINESIS_MOCK_PLAIN_PORT=$port CREATE_STREAM_DURATION=0ms DELETE_STREAM_DURATION=0ms SHARD_LIMIT=1000 LOG_LEVEL=WARN node main.js)"
      (cd "$NPM_BIN/kinesis-local" && KINESIS_MOCK_PLAIN_PORT="$port" KINESIS_MOCK_TLS_PORT="$((port + 1000))" \
        CREATE_STREAM_DURATION=0ms DELETE_STREAM_DURATION=0ms SHARD_LIMIT=1000 LOG_LEVEL=WARN \
        exec setsid node main.js) >"$dir.log" 2>&1 &
      ;;
    *) log "unknown peer $peer"; return 1 ;;
  esac
  SERVER_PID=$!
  CMDLINE[$peer]="$cmd"
  wait_port "$port" 60
}

BENCH_ARGS=(putget --stream bench --shards "$SHARDS" --concurrency "$CONCURRENCY" --batch "$BATCH"
  --record-bytes "$RECORD_BYTES" --duration "$DURATION")

RUN_STAMP="$(date +%Y%m%d-%H%M%S)"
for peer in $PEERS; do
  STATUS[$peer]="ok"
  for i in $(seq 1 "$REPEAT"); do
    port=$(pick_port)
    dir="$OUT/data/$peer-$RUN_STAMP-$i"
    mkdir -p "$OUT/data"; rm -rf "$dir"; mkdir -p "$dir"
    if ! start_server "$peer" "$port" "$dir"; then
      log "$peer: not installed or did not start (log: $dir.log)"
      STATUS[$peer]="did not start"
      stop_server
      break
    fi
    log "$peer run $i/$REPEAT on port $port"
    out="$RESULTS/$peer-$RUN_STAMP-$i.json"
    if timeout $((DURATION * 6 + 180)) "${BENCH[@]}" --endpoint-url "http://127.0.0.1:$port" --output json \
        "${BENCH_ARGS[@]}" >"$out" 2>"$out.err"; then
      :
    else
      log "$peer run $i failed: $(tail -c 300 "$out.err" | tr '\n' ' ')"
      STATUS[$peer]="failed run $i"
      # The JSON (if printed) is kept: a verification failure still has figures.
      [ -s "$out" ] || rm -f "$out"
    fi
    stop_server
    rm -rf "$dir"
  done
done

# ---- request shapes with wrk --------------------------------------------------
# Raw JSON with a dummy SigV4 Authorization header: every peer accepts it
# without checking the signature (runnel in its default open mode).
AUTH_HEADERS=(-H 'X-Amz-Date: 20260101T000000Z'
  -H 'Authorization: AWS4-HMAC-SHA256 Credential=any/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=00')
kinesis_call() { # port operation json
  curl -s -X POST "http://127.0.0.1:$1/" -H 'Content-Type: application/x-amz-json-1.1' \
    -H "X-Amz-Target: Kinesis_20131202.$2" "${AUTH_HEADERS[@]}" -d "$3"
}
if [ "$wrk_ok" = 1 ]; then
  for peer in $PEERS; do
    for shape in $SHAPES; do
      recs=${shape%x*}; bytes=${shape#*x}
      for i in $(seq 1 "$REPEAT"); do
        port=$(pick_port)
        dir="$OUT/data/$peer-$RUN_STAMP-shape-$shape-$i"
        mkdir -p "$OUT/data"; rm -rf "$dir"; mkdir -p "$dir"
        if ! start_server "$peer" "$port" "$dir"; then
          log "$peer: did not start for shape $shape"; stop_server; break
        fi
        kinesis_call "$port" CreateStream "{\"StreamName\":\"shape\",\"ShardCount\":$SHARDS}" >/dev/null
        for _ in $(seq 1 100); do
          kinesis_call "$port" DescribeStreamSummary '{"StreamName":"shape"}' | grep -q '"ACTIVE"' && break
          sleep 0.1
        done
        log "$peer shape $shape run $i/$REPEAT on port $port"
        STREAM=shape RECORDS=$recs BYTES=$bytes timeout $((SHAPE_DURATION + 60)) \
          wrk -t2 -c"$SHAPE_CONNECTIONS" -d"${SHAPE_DURATION}s" --timeout 10s \
          -s "$ROOT/scripts/bench/putrecords.lua" "http://127.0.0.1:$port/" \
          >"$RESULTS/$peer-$RUN_STAMP-shape-$shape-$i.txt" 2>&1 || log "$peer shape $shape run $i: wrk failed"
        stop_server
        rm -rf "$dir"
      done
    done
  done
fi

# ---- report -----------------------------------------------------------------
STATUS_JSON="{"
for peer in $PEERS; do
  STATUS_JSON+="\"$peer\": {\"status\": \"${STATUS[$peer]:-skipped}\", \"version\": \"${VERSION[$peer]:-}\", \"cmd\": $(printf '%s' "${CMDLINE[$peer]:-}" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')},"
done
STATUS_JSON="${STATUS_JSON%,}}"

TABLE="$(python3 - "$RESULTS" "$RUN_STAMP" "$PEERS" "$STATUS_JSON" <<'EOF'
import glob, json, statistics, sys
results, stamp, peers, status = sys.argv[1], sys.argv[2], sys.argv[3].split(), json.loads(sys.argv[4])
labels = {
    "runnel": "runnel (fsync per commit)",
    "kinesalite": "kinesalite (in-memory)",
    "ferrokinesis": "ferrokinesis (in-memory)",
    "ferrokinesis-durable": "ferrokinesis (--state-dir)",
    "kinesis-local": "kinesis-local (in-memory)",
}
rows = {}
for peer in peers:
    runs = []
    for f in sorted(glob.glob(f"{results}/{peer}-{stamp}-*.json")):
        try:
            runs.append(json.load(open(f)))
        except (ValueError, OSError):
            pass
    rows[peer] = runs
med = lambda xs: statistics.median(xs) if xs else None
def fig(runs, *path):
    vals = []
    for r in runs:
        v = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(v)
    return med(vals)
base = fig(rows.get("kinesalite", []), "put", "records_per_s")
fmt = lambda v, d=0: "—" if v is None else (f"{v:,.{d}f}")
print("| server | version | put records/s | put MB/s | PutRecords p50 ms | PutRecords p99 ms | get records/s | put vs kinesalite | runs | verified | status |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|")
for peer in peers:
    runs = rows[peer]
    put = fig(runs, "put", "records_per_s")
    ratio = "—" if put is None or not base else (f"{put / base:.1f}×" if put >= base else f"{put / base:.2f}×")
    verified = "—" if not runs else ("yes" if all(r.get("get", {}).get("count_ok") and r["get"].get("order_violations") == 0 for r in runs) else "NO")
    st = status.get(peer, {})
    print(f"| {labels.get(peer, peer)} | {st.get('version') or '—'} | {fmt(put)} | {fmt(fig(runs, 'put', 'mb_per_s'), 2)} "
          f"| {fmt(fig(runs, 'put', 'latency', 'p50_ms'), 1)} | {fmt(fig(runs, 'put', 'latency', 'p99_ms'), 1)} "
          f"| {fmt(fig(runs, 'get', 'records_per_s'))} | {ratio} | {len(runs)} | {verified} | {st.get('status', 'skipped')} |")
EOF
)"

SHAPE_TABLE="$(python3 - "$RESULTS" "$RUN_STAMP" "$PEERS" "$SHAPES" <<'PY'
import glob, re, statistics, sys
results, stamp, peers, shapes = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
labels = {"runnel": "runnel (fsync)", "kinesalite": "kinesalite", "ferrokinesis": "ferrokinesis (in-memory)",
          "ferrokinesis-durable": "ferrokinesis (--state-dir)", "kinesis-local": "kinesis-local"}
med = lambda xs: statistics.median(xs) if xs else None
print("| shape (records × bytes) | server | records/s | MB/s | request p50 ms | request p99 ms | failed requests | vs ferrokinesis in-memory | runs |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
for shape in shapes:
    figs = {}
    for peer in peers:
        runs = []
        for f in sorted(glob.glob(f"{results}/{peer}-{stamp}-shape-{shape}-*.txt")):
            m = re.search(r"RESULT (.*)", open(f).read())
            if m:
                runs.append({k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())})
        figs[peer] = runs
    rec = lambda r: r["requests"] * r["records_per_request"] / (r["duration_us"] / 1e6)
    base = med([rec(r) for r in figs.get("ferrokinesis", [])])
    for peer in peers:
        runs = figs[peer]
        if not runs:
            print(f"| {shape} | {labels.get(peer, peer)} | — | — | — | — | — | — | 0 |")
            continue
        rps = med([rec(r) for r in runs])
        mbs = med([rec(r) * r["record_bytes"] / 1e6 for r in runs])
        p50 = med([r["p50_us"] / 1000 for r in runs])
        p99 = med([r["p99_us"] / 1000 for r in runs])
        failed = sum(r["failed"] + r["errors_read"] + r["errors_timeout"] for r in runs)
        ratio = f"{rps / base:.2f}×" if base else "—"
        print(f"| {shape} | {labels.get(peer, peer)} | {rps:,.0f} | {mbs:,.1f} | {p50:.2f} | {p99:.2f} | {failed} | {ratio} | {len(runs)} |")
PY
)"

echo "$TABLE"
echo
echo "$SHAPE_TABLE"

if [ "$WRITE_DOC" = 1 ]; then
  GEN="$(mktemp)"
  {
    echo "Produced by \`scripts/bench-peers.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Re-run it to refresh this page;"
    echo "raw JSON of every run is left in \`bench-out/results/\`."
    echo
    echo "## Result"
    echo
    echo "Medians over $REPEAT runs of ${DURATION} s. Each run: a fresh server, one stream of $SHARDS shards,"
    echo "$CONCURRENCY concurrent producers sending PutRecords batches of $BATCH records of $RECORD_BYTES bytes"
    echo "(random partition keys) for ${DURATION} s, then one reader per shard reading everything back from"
    echo "TRIM_HORIZON (GetRecords Limit 10000) and checking the count and per-shard sequence order."
    echo "MB are 10^6 bytes of record data. Latency is per PutRecords call (500 records) as the client sees it."
    echo
    echo "$TABLE"
    echo
    echo "runnel acknowledges a PutRecords only after its records are fsynced (group commit), the default"
    echo "durability. kinesalite, kinesis-local and ferrokinesis without \`--state-dir\` keep everything in memory;"
    echo "ferrokinesis with \`--state-dir\` writes a WAL (see its documentation for when it syncs)."
    echo
    echo "### Request shapes (independent load generator)"
    echo
    echo "wrk (C, \`scripts/bench/putrecords.lua\`): ${SHAPE_CONNECTIONS} connections, ${SHAPE_DURATION} s per run, a fresh server and"
    echo "stream of $SHARDS shards per run, raw JSON PutRecords of RECORDS records × BYTES bytes. A request counts as"
    echo "failed if it is not a 200 or reports a FailedRecordCount other than 0. Latency is per request."
    echo
    echo "$SHAPE_TABLE"
    echo
    echo "Spread between runs is large on a 2-core machine (the load generator competes with the server);"
    echo '`bench-out/results/*.json` holds every run'"'"'s figures, including p90/p99.9/max latency.'
    echo
    echo "## Machine"
    echo
    echo '```'
    echo "nproc: $(nproc)"
    lscpu 2>/dev/null | grep -E '^(Model name|Architecture)' | sed 's/  */ /g'
    free -h
    echo "kernel: $(uname -sr)"
    echo "node $(node --version 2>/dev/null), $(rustc --version 2>/dev/null)"
    echo '```'
    echo
    echo "Client and servers share the machine, so every figure includes the load generator's own CPU use."
    echo
    echo "## Exact commands"
    echo
    echo "Load (the same for every server; PORT differs):"
    echo
    echo '```'
    echo "${BENCH[*]##*/} --endpoint-url http://127.0.0.1:PORT --output json ${BENCH_ARGS[*]}" | sed "s|$ROOT/||g"
    echo '```'
    echo
    echo "Servers (paths relative to \`bench-out/peers/npm\` for the npm packages):"
    echo
    echo '```'
    for peer in $PEERS; do
      echo "$STATUS_JSON" | python3 -c "import json,sys; d=json.load(sys.stdin)['$peer']; print('# $peer ' + (d['version'] or '') + ': ' + d['status']); print(d['cmd'] or '(not run)')"
    done | sed -e "s|$OUT/data/[^ ]*|DATA_DIR|g"
    echo '```'
    echo
    echo "Reproduce: \`scripts/bench-peers.sh --duration $DURATION --repeat $REPEAT\`."
  } >"$GEN"
  python3 - "$DOC" "$GEN" <<'PY'
import sys
doc, gen = sys.argv[1], sys.argv[2]
begin, end = "<!-- bench-peers:begin -->", "<!-- bench-peers:end -->"
body = open(gen).read().rstrip("\n")
try:
    text = open(doc).read()
except OSError:
    text = "# Benchmarks\n\n" + begin + "\n" + end + "\n"
if begin not in text or end not in text:
    text = text.rstrip("\n") + "\n\n" + begin + "\n" + end + "\n"
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc, "w").write(head + begin + "\n" + body + "\n" + end + tail)
PY
  rm -f "$GEN"
  log "wrote $DOC"
fi
