"""Fixtures for the runnel end-to-end suite.

By default one `runnel serve --test-clock` process is started for the session
(binary from $RUNNEL_BIN or target/release/runnel). With
RUNNEL_E2E_ENDPOINT=http://host:port the suite runs against that endpoint
instead (e.g. kinesalite, to check that the tests themselves are right); tests
that need runnel-only features (test clock, restarting the server) are then
skipped, and with RUNNEL_E2E_REFERENCE=kinesalite so are the tests of AWS
behaviour that kinesalite never implemented (marked `kinesalite_diverges`).
"""

from __future__ import annotations

import os
import re
import sys
import uuid

import pytest
import requests

import kin

EXTERNAL_ENDPOINT = os.environ.get("RUNNEL_E2E_ENDPOINT", "").rstrip("/")
REFERENCE = os.environ.get("RUNNEL_E2E_REFERENCE", "")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if EXTERNAL_ENDPOINT and item.get_closest_marker("runnel_only"):
            item.add_marker(pytest.mark.skip(reason="runnel-only (RUNNEL_E2E_ENDPOINT set)"))
        m = item.get_closest_marker("kinesalite_diverges")
        if REFERENCE == "kinesalite" and m:
            reason = m.kwargs.get("reason") or (m.args[0] if m.args else "")
            item.add_marker(pytest.mark.skip(reason=f"kinesalite diverges: {reason}"))


@pytest.fixture(scope="session")
def server(request):
    """The shared server: a kin.RunnelProcess, or None for an external endpoint."""
    if EXTERNAL_ENDPOINT:
        kin.wait_reachable(EXTERNAL_ENDPOINT)
        yield None
        return
    proc = kin.RunnelProcess().start()
    try:
        yield proc
    finally:
        died = not proc.alive()
        proc.kill()
        if request.session.testsfailed or died:
            sys.stderr.write(
                f"\n===== runnel server log ({'died' if died else 'tests failed'}) =====\n"
                + proc.log_tail() + "\n===== end of server log =====\n")
        proc.cleanup()


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return EXTERNAL_ENDPOINT or server.endpoint


@pytest.fixture(autouse=True)
def _server_still_alive(server):
    yield
    if server is not None and not server.alive():
        pytest.fail("the shared runnel server died during this test", pytrace=False)


@pytest.fixture(scope="session")
def kinesis(endpoint):
    """boto3 client with client-side parameter validation (what users run)."""
    return kin.make_client(endpoint)


@pytest.fixture(scope="session")
def kinesis_nv(endpoint):
    """boto3 client without client-side validation, so the server's own
    validation is what answers."""
    return kin.make_client(endpoint, validate=False)


class TestClock:
    """Moves the server's clock (runnel --test-clock). `offset_ms` is the total
    advance so far in this session, for checks against wall-clock time."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.offset_ms = 0

    def advance(self, ms: int) -> None:
        r = requests.post(self.endpoint + "/_runnel/test/clock/advance", json={"ms": ms}, timeout=30)
        assert r.status_code == 200, f"clock advance: {r.status_code} {r.text}"
        self.offset_ms += ms

    def retention_sweep(self) -> dict:
        r = requests.post(self.endpoint + "/_runnel/test/retention", timeout=120)
        assert r.status_code == 200, f"retention sweep: {r.status_code} {r.text}"
        return r.json()


@pytest.fixture(scope="session")
def _session_clock(endpoint):
    return None if EXTERNAL_ENDPOINT else TestClock(endpoint)


@pytest.fixture
def clock(_session_clock):
    """The shared server's test clock; skips the test against external endpoints."""
    if _session_clock is None:
        pytest.skip("needs runnel --test-clock")
    return _session_clock


@pytest.fixture
def maybe_clock(_session_clock):
    """The test clock if there is one, else None (tests that work either way)."""
    return _session_clock


def _name_for(request) -> str:
    base = re.sub(r"[^a-zA-Z0-9_.-]", "-", request.node.name)[:60]
    return f"e2e-{base}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def stream_name(request) -> str:
    """A stream name no other test uses (the stream is not created)."""
    return _name_for(request)


@pytest.fixture
def make_stream(request, kinesis):
    """Factory: make_stream(shards=1, **create_kwargs) -> name, ACTIVE.
    Every stream it made is deleted (and waited for) after the test, so the
    account's open shard count goes back to where it was."""
    made: list[str] = []

    def factory(shards: int | None = 1, name: str | None = None, **kwargs) -> str:
        name = name or f"{_name_for(request)}-{len(made)}"
        if shards is not None and "StreamModeDetails" not in kwargs:
            kwargs["ShardCount"] = shards
        kinesis.create_stream(StreamName=name, **kwargs)
        made.append(name)
        kin.wait_status(kinesis, name, "ACTIVE")
        return name

    yield factory
    for name in made:
        try:
            kin.wait_status(kinesis, name, "ACTIVE")
            kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
        except Exception:  # already deleted by the test, or gone
            pass
    for name in made:
        try:
            kin.wait_gone(kinesis, name)
        except Exception:
            pass


@pytest.fixture
def stream(make_stream) -> str:
    """A fresh ACTIVE stream with 1 shard."""
    return make_stream(1)


# --- A real S3-compatible server (s3s-fs, via scripts/s3-server.sh) for the
# Firehose delivery tests. scripts/test runs `scripts/s3-server.sh install`.

S3_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "s3-server.sh")


class S3Server:
    """Where the session's S3 server listens and the credentials it accepts."""

    def __init__(self, settings: dict, port: int, data_dir):
        self.endpoint = f"http://127.0.0.1:{port}"
        self.access_key = settings["RUNNEL_S3_ACCESS_KEY"]
        self.secret_key = settings["RUNNEL_S3_SECRET_KEY"]
        self.region = settings["RUNNEL_S3_REGION"]
        self.data_dir = data_dir


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    import subprocess

    def run(*args: str) -> str:
        done = subprocess.run([S3_SCRIPT, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"s3-server.sh {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    settings = dict(line.split("=", 1) for line in run("env").split())
    if not os.access(settings["RUNNEL_S3_BIN"], os.X_OK):
        pytest.fail(f"no S3 server at {settings['RUNNEL_S3_BIN']}: run scripts/s3-server.sh install",
                    pytrace=False)
    data_dir = tmp_path_factory.mktemp("s3") / "data"
    port = kin.free_port()
    run("start", str(data_dir), str(port))
    try:
        yield S3Server(settings, port, data_dir)
    finally:
        run("stop", str(data_dir))
