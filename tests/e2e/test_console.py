"""The web console (/console) in a real browser: Debian's Chromium driven by
playwright-core from tests/e2e/console/drive.mjs (scripts/test installs both).

The browser test gets its own `runnel serve` (same flags as the shared server:
--test-clock, --quotas off) because the console asks CloudWatch for "the last
hour" by the browser's clock, and other tests move the shared server's clock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

import kin

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
OUT_DIR = kin.REPO_ROOT / "test-output"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DRIVER_TIMEOUT_S = 150


def _missing_tools() -> list[str]:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if shutil.which("node") is None:
        missing.append("node (apt-get install nodejs npm)")
    if not (CONSOLE_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("playwright-core (npm ci --prefix tests/e2e/console)")
    return missing


@pytest.fixture
def browser_tools():
    missing = _missing_tools()
    if missing:
        msg = "browser test needs " + ", ".join(missing) + "; scripts/test installs them"
        if os.environ.get("CI"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


@pytest.fixture
def console_server():
    proc = kin.RunnelProcess().start()
    try:
        yield proc
    finally:
        proc.kill()
        # Captured output: pytest shows it only when the test failed.
        print("===== console server log =====\n" + proc.log_tail())
        proc.cleanup()


@pytest.mark.runnel_only
def test_console_assets(endpoint):
    for path in ("/console", "/console/", "/console/index.html"):
        r = requests.get(endpoint + path, timeout=10)
        assert r.status_code == 200, path
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert "connect-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
    html = requests.get(endpoint + "/console", timeout=10).text
    assets = re.findall(r'(?:href|src)="(/console/[^"]+)"', html)
    assert "/console/app.js" in assets and "/console/style.css" in assets, assets
    for a in assets:
        r = requests.get(endpoint + a, timeout=10)
        assert r.status_code == 200, a
        if a.endswith(".js"):
            assert r.headers["content-type"].startswith("text/javascript")
            # The console is only a client of the public APIs.
            assert "_runnel/" not in r.text, a
    js = requests.get(endpoint + "/console/api.js", timeout=10).text
    assert "Kinesis_20131202." in js and "GraniteServiceVersion20100801." in js
    # Open mode wants a complete (unverified) signature: the console sends a placeholder one.
    assert "Credential=runnel-console/" in js
    assert requests.get(endpoint + "/console/nope.js", timeout=10).status_code == 404
    assert requests.get(endpoint + "/consoles", timeout=10).status_code == 404
    # POST / is still the Kinesis API, not the console.
    status, body = kin.raw_call(endpoint, "ListStreams", {})
    assert status == 200 and "StreamNames" in body


@pytest.mark.runnel_only
@pytest.mark.timeout(DRIVER_TIMEOUT_S + 60)
def test_console_in_chromium(browser_tools, console_server):
    endpoint = console_server.endpoint
    name = f"console-{uuid.uuid4().hex[:8]}"
    OUT_DIR.mkdir(exist_ok=True)
    for old in OUT_DIR.glob("console*.png"):
        old.unlink()
    try:
        p = subprocess.run(
            ["node", str(CONSOLE_DIR / "drive.mjs"), endpoint, name, str(OUT_DIR)],
            cwd=CONSOLE_DIR, capture_output=True, text=True, timeout=DRIVER_TIMEOUT_S,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"console driver timed out after {DRIVER_TIMEOUT_S}s\n{out}\n"
                    + console_server.log_tail(), pytrace=False)
    print(p.stdout)
    assert p.returncode == 0, (
        f"console driver failed (rc={p.returncode}); screenshots in {OUT_DIR}\n"
        f"--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}\n--- server log\n{console_server.log_tail()}")
    assert (OUT_DIR / "console.png").stat().st_size > 10_000

    # What the browser did, seen through boto3.
    client = kin.make_client(endpoint)
    shards = kin.list_shards_all(client, name)
    kin.assert_shard_map(shards)
    closed = [s["ShardId"] for s in shards if kin.is_closed(s)]
    assert closed == ["shardId-000000000000"], shards
    assert len(shards) - len(closed) == 3
    summary = kin.wait_status(client, name, "ACTIVE")
    levels = summary["EnhancedMonitoring"][0]["ShardLevelMetrics"]
    assert {"IncomingRecords", "IteratorAgeMilliseconds"} <= set(levels)
    _order, records, _ = kin.walk_lineage(client, name)
    got = [r for recs in records.values() for r in recs]
    assert len(got) == 23, len(got)
    keys = {r["PartitionKey"] for r in got}
    assert {"alice", "bob", "carol"} <= keys
    client.delete_stream(StreamName=name)
