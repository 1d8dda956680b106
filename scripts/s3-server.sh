#!/usr/bin/env bash
# A real S3-compatible server for the Firehose delivery tests: s3s-fs, the
# file-system backed server of the s3s project (crates.io), built from source
# into .tools/ under the repository. It speaks the S3 REST API with SigV4
# (path-style addressing) and keeps buckets as directories under DIR.
#
#   scripts/s3-server.sh install          build s3s-fs $S3S_FS_VERSION into .tools/ if missing
#   scripts/s3-server.sh start DIR PORT   serve DIR on 127.0.0.1:PORT, wait until it answers
#   scripts/s3-server.sh stop [DIR]       stop the server started on DIR (default: the last one)
#   scripts/s3-server.sh env              print the fixed endpoint settings the tests use
#
# The access key and secret are fixed (RUNNEL_S3_ACCESS_KEY / RUNNEL_S3_SECRET_KEY
# override them); the server checks every request's signature against them.
# RUNNEL_TOOLS_DIR puts the build somewhere other than .tools/ (e.g. a
# directory kept across fresh clones). The server's log goes to DIR.log and
# its process id to DIR.pid, beside DIR; inside DIR s3s-fs keeps one
# directory per bucket and its own dot-files (metadata, pending uploads).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

# 0.14.1 is the newest s3s-fs whose rust-version (1.92) our toolchain meets;
# 0.15 and later need Rust 1.96.
S3S_FS_VERSION=0.14.1
TOOLS="${RUNNEL_TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS/bin/s3s-fs"
LAST="$TOOLS/s3-server.last"
ACCESS_KEY="${RUNNEL_S3_ACCESS_KEY:-runnel-test-access}"
SECRET_KEY="${RUNNEL_S3_SECRET_KEY:-runnel-test-secret-0123456789}"
START_TIMEOUT_S="${RUNNEL_S3_START_TIMEOUT_S:-30}"

die() { echo "s3-server.sh: $*" >&2; exit 1; }

installed_version() {
    [[ -x "$BIN" ]] || return 0
    "$BIN" --version 2>/dev/null | awk '{print $2}' || true
}

cmd_install() {
    local have
    have=$(installed_version)
    if [[ "$have" == "$S3S_FS_VERSION" ]]; then
        echo "s3s-fs $S3S_FS_VERSION present in .tools/bin"
        return
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo is needed to build s3s-fs"
    echo "building s3s-fs $S3S_FS_VERSION into .tools/ (cargo install; about 4 min on a busy 2-core machine)"
    # --locked: the crate's own Cargo.lock, so a fresh machine builds the same set.
    # --force: replace an older pinned version if one is there.
    cargo install --locked --force "s3s-fs@$S3S_FS_VERSION" --features binary --root "$TOOLS"
    [[ "$(installed_version)" == "$S3S_FS_VERSION" ]] || die "s3s-fs $S3S_FS_VERSION did not install"
}

# True once something on PORT answers an HTTP request with a status line.
answers() {
    local port=$1
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$port" >&3 || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        [[ "$line" == HTTP/1.1\ * ]]
    ) 2>/dev/null
}

cmd_start() {
    [[ $# -eq 2 ]] || die "usage: start DIR PORT"
    local dir=$1 port=$2
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number, got '$port'"
    [[ -x "$BIN" ]] || die "s3s-fs is not installed; run: scripts/s3-server.sh install"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f "$dir.pid" ]] && kill -0 "$(cat "$dir.pid")" 2>/dev/null; then
        die "a server already runs on $dir (pid $(cat "$dir.pid"))"
    fi
    if answers "$port"; then
        die "port $port is already in use"
    fi
    # setsid: its own process group, so a Ctrl-C in the caller's terminal
    # doesn't reach it and stop can end exactly this process.
    RUST_LOG="${RUST_LOG:-warn}" setsid "$BIN" --host 127.0.0.1 --port "$port" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$dir" \
        >"$dir.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir.pid"
    mkdir -p "$TOOLS"
    echo "$dir" >"$LAST"
    local deadline=$((SECONDS + START_TIMEOUT_S))
    until answers "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$dir.pid"
            echo "----- $dir.log -----" >&2
            cat "$dir.log" >&2 || true
            die "s3s-fs exited before answering on port $port"
        fi
        if [[ $SECONDS -ge $deadline ]]; then
            kill "$pid" 2>/dev/null || true
            rm -f "$dir.pid"
            die "s3s-fs did not answer on port $port within ${START_TIMEOUT_S}s"
        fi
        sleep 0.1
    done
    echo "s3s-fs $S3S_FS_VERSION on http://127.0.0.1:$port (pid $pid, data $dir)"
}

cmd_stop() {
    local dir=${1:-}
    if [[ -z "$dir" ]]; then
        [[ -f "$LAST" ]] || { echo "no server recorded; nothing to stop"; return; }
        dir=$(cat "$LAST")
    fi
    dir=${dir%/}
    [[ -f "$dir.pid" ]] || { echo "no pid file $dir.pid; nothing to stop"; return; }
    local pid i
    pid=$(cat "$dir.pid")
    if kill -0 "$pid" 2>/dev/null; then
        # SIGINT is the server's graceful-shutdown signal (it waits for open
        # connections, up to 10 s); SIGKILL after that.
        kill -INT "$pid" 2>/dev/null || true
        for ((i = 0; i < 120; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir.pid"
    if [[ -f "$LAST" && "$(cat "$LAST")" == "$dir" ]]; then rm -f "$LAST"; fi
    echo "stopped s3s-fs on $dir"
}

cmd_env() {
    echo "RUNNEL_S3_BIN=$BIN"
    echo "RUNNEL_S3_VERSION=$S3S_FS_VERSION"
    echo "RUNNEL_S3_ACCESS_KEY=$ACCESS_KEY"
    echo "RUNNEL_S3_SECRET_KEY=$SECRET_KEY"
    echo "RUNNEL_S3_REGION=us-east-1"
}

sub=${1:-}
[[ $# -gt 0 ]] && shift
case "$sub" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    env) cmd_env "$@" ;;
    *) die "usage: $0 install | start DIR PORT | stop [DIR] | env" ;;
esac
