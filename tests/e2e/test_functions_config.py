"""The function registry's configuration as `runnel serve` takes it: the
[functions] table in runnel.toml and repeatable --function ARN=URL flags,
checked at start-up with a message naming the bad entry."""

import subprocess

import kin

ARN = "arn:aws:lambda:us-east-1:000000000000:function:enrich"


def serve(tmp_path, *args):
    return subprocess.run([str(kin.runnel_bin()), "serve", "--addr", "127.0.0.1:0",
                           "--data-dir", str(tmp_path / "data"), *args],
                          capture_output=True, text=True, timeout=30)


def test_flag_without_url_is_refused(tmp_path):
    out = serve(tmp_path, "--function", "enrich")
    assert out.returncode != 0
    assert "invalid configuration: --function 'enrich' must be ARN=URL" in out.stderr


def test_bad_url_and_bad_name_are_refused(tmp_path):
    out = serve(tmp_path, "--function", "enrich=ftp://127.0.0.1/x")
    assert out.returncode != 0
    assert "function 'enrich': URL 'ftp://127.0.0.1/x' has scheme 'ftp'; use http or https" in out.stderr
    out = serve(tmp_path, "--function", "arn:aws:lambda:us-east-1:1:function:f=http://127.0.0.1/x")
    assert out.returncode != 0
    assert "account '1' is not 12 digits" in out.stderr


def test_same_function_in_file_and_flag_is_refused(tmp_path):
    cfg = tmp_path / "runnel.toml"
    cfg.write_text(f'[functions]\n"{ARN}" = "http://127.0.0.1:9000/a"\n')
    out = serve(tmp_path, "--config", str(cfg), "--function", "enrich:$LATEST=http://127.0.0.1:9000/b")
    assert out.returncode != 0
    assert f"function {ARN} is named more than once" in out.stderr


def test_valid_functions_start(tmp_path):
    cfg = tmp_path / "runnel.toml"
    cfg.write_text(f'[functions]\n"{ARN}" = "http://127.0.0.1:9000/a"\n')
    srv = kin.RunnelProcess(data_dir=tmp_path / "data", extra_args=[
        "--config", str(cfg),
        "--function", "enrich:live=https://fn.example/b?x=1",
        "--function", "other=http://127.0.0.1:9001/"]).start()
    try:
        assert srv.proc.poll() is None
    finally:
        srv.kill()
