//! The testkit's process handling, against a stand-in server binary.

use std::path::PathBuf;
use std::time::Duration;

use runnel_testkit::{http_request, TestServer, TestServerOptions};

fn fake_opts() -> TestServerOptions {
    TestServerOptions {
        bin: Some(PathBuf::from(env!("CARGO_BIN_EXE_runnel-testkit-fake"))),
        ..TestServerOptions::default()
    }
}

fn starts(server: &TestServer) -> u32 {
    std::fs::read_to_string(server.data_dir().join("starts"))
        .expect("starts file")
        .trim()
        .parse()
        .expect("number")
}

#[test]
fn start_kill9_restart_stop_on_the_same_port_and_dir() {
    let mut server = TestServer::start(fake_opts()).expect("start");
    let port = server.port();
    assert_eq!(server.endpoint(), format!("http://127.0.0.1:{port}"));
    assert!(server.is_running());
    assert_eq!(starts(&server), 1);
    server.advance_clock(1_000).expect("advance");
    let (status, body) = http_request(
        server.addr(),
        "POST",
        "/_runnel/test/clock/advance",
        Some(("application/json", b"{\"ms\":5}")),
    )
    .expect("advance again");
    assert_eq!((status, body.as_str()), (200, "{\"advancedMs\":1005}"));

    server.kill9().expect("kill9");
    assert!(!server.is_running());
    assert!(http_request(server.addr(), "GET", "/health", None).is_err());
    server.restart().expect("restart after kill9");
    assert_eq!(server.port(), port);
    assert_eq!(starts(&server), 2);

    // restart() on a running server stops it first.
    server.restart().expect("restart while running");
    assert_eq!(starts(&server), 3);
    let status = server.stop().expect("stop");
    // The stand-in has no SIGTERM handler: it dies by the signal.
    assert!(!status.success());
    assert!(
        server.stderr_tail(10).contains("start #3"),
        "{}",
        server.stderr_tail(10)
    );
}

#[test]
fn startup_failure_reports_stderr() {
    let opts = TestServerOptions {
        // A "server" that exits at once.
        startup_timeout: Duration::from_secs(5),
        bin: Some(PathBuf::from("/bin/false")),
        ..TestServerOptions::default()
    };
    let err = match TestServer::start(opts) {
        Ok(_) => panic!("/bin/false cannot become healthy"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("exited during startup"), "{err}");
}

#[test]
fn drop_kills_the_child() {
    let server = TestServer::start(fake_opts()).expect("start");
    let addr = server.addr();
    drop(server);
    assert!(http_request(addr, "GET", "/health", None).is_err());
}
