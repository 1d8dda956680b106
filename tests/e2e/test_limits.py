"""Limits against abuse: the connection cap."""

from __future__ import annotations

import socket
import time

import pytest
import requests

import kin

pytestmark = pytest.mark.runnel_only


def test_connection_cap_closes_excess_connections(tmp_path):
    cfg = tmp_path / "runnel.toml"
    cfg.write_text("connections_max = 3\n")
    srv = kin.RunnelProcess(extra_args=["--config", str(cfg)]).start()
    try:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(3)]
        time.sleep(0.2)  # let the server accept them
        extra = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = extra.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b"", f"a connection over the cap was served: {got!r}"
        for s in held:
            s.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if requests.get(srv.endpoint + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        else:
            pytest.fail("server did not serve again after connections closed")
    finally:
        srv.cleanup()
