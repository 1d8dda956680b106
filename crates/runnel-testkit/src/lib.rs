//! runnel-testkit: a real `runnel serve` process for end-to-end tests.
//!
//! [`TestServer::start`] picks a free loopback port and a fresh temporary data
//! directory, spawns the release binary with the test flags
//! (`--test-clock`, a short `--stream-transition-ms`), and waits for
//! `GET /health` to answer 200. The process can then be killed with SIGKILL
//! ([`TestServer::kill9`]), stopped cleanly with SIGTERM ([`TestServer::stop`])
//! and started again on the same port and data directory
//! ([`TestServer::restart`]), which is what crash-recovery tests need.
//!
//! The binary is found through `RUNNEL_BIN` (an absolute path, set by the test
//! script), else `$CARGO_TARGET_DIR/release/runnel`, else
//! `<workspace>/target/release/runnel`.
//!
//! Everything here is blocking std code on purpose: it is small, it works from
//! sync and async tests alike, and it keeps this crate free of the AWS SDK.
//! The waits are bounded by deadlines, never open-ended.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long a start (or restart) may take before the test fails.
pub const STARTUP_TIMEOUT_DEFAULT_MS: u64 = 20_000;
/// How long a SIGTERM'd server gets to exit before it is SIGKILLed.
pub const STOP_TIMEOUT_MS: u64 = 10_000;
/// Lines of server stderr printed when something goes wrong.
pub const STDERR_TAIL_LINES: usize = 60;
/// Bytes read from the end of the stderr log to find those lines.
const STDERR_TAIL_BYTES_MAX: u64 = 64 * 1024;
/// Per-request socket timeout for the testkit's own tiny HTTP client.
const HTTP_TIMEOUT_MS: u64 = 5_000;
/// Largest response the testkit's HTTP client reads.
const HTTP_RESPONSE_BYTES_MAX: u64 = 1024 * 1024;

/// `--durability` values of `runnel serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync before acknowledging (the server default).
    Fsync,
    /// acknowledge without fsync.
    None,
}

impl Durability {
    fn as_flag(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::None => "none",
        }
    }
}

/// Options for [`TestServer::start`]. `Default` is what most tests want.
#[derive(Debug, Clone)]
pub struct TestServerOptions {
    /// `--stream-transition-ms`: how long streams stay CREATING/UPDATING/DELETING.
    pub stream_transition_ms: u64,
    /// Pass `--test-clock` (enables `POST /_runnel/test/clock/advance`).
    pub test_clock: bool,
    /// `--segment-bytes`, if set.
    pub segment_bytes: Option<u64>,
    /// `--durability`, if set (the server's default is fsync).
    pub durability: Option<Durability>,
    /// `--quotas`: per-shard throughput quotas. Tests default to `off` so that
    /// bulk traffic is not throttled; quota tests set `aws`.
    pub quotas: Option<String>,
    /// Extra arguments appended after the ones above.
    pub extra_args: Vec<String>,
    /// Bound on waiting for `/health`.
    pub startup_timeout: Duration,
    /// Binary to run instead of [`runnel_bin`] (the testkit's own tests use a
    /// stand-in server).
    pub bin: Option<PathBuf>,
}

impl Default for TestServerOptions {
    fn default() -> Self {
        TestServerOptions {
            stream_transition_ms: 50,
            test_clock: true,
            segment_bytes: None,
            durability: None,
            quotas: Some("off".to_string()),
            extra_args: Vec::new(),
            startup_timeout: Duration::from_millis(STARTUP_TIMEOUT_DEFAULT_MS),
            bin: None,
        }
    }
}

/// A running (or stopped, restartable) `runnel serve` child process.
pub struct TestServer {
    bin: PathBuf,
    opts: TestServerOptions,
    port: u16,
    data_dir: tempfile::TempDir,
    log_dir: tempfile::TempDir,
    child: Option<Child>,
    starts_count: u32,
}

impl TestServer {
    /// Start a server on a free port with a fresh data directory.
    pub fn start(opts: TestServerOptions) -> Result<TestServer> {
        let bin = match &opts.bin {
            Some(bin) => bin.clone(),
            None => runnel_bin()?,
        };
        let data_dir = tempfile::Builder::new()
            .prefix("runnel-data-")
            .tempdir()
            .context("creating the data directory")?;
        let log_dir = tempfile::Builder::new()
            .prefix("runnel-log-")
            .tempdir()
            .context("creating the log directory")?;
        let port = free_port()?;
        let mut server = TestServer {
            bin,
            opts,
            port,
            data_dir,
            log_dir,
            child: None,
            starts_count: 0,
        };
        server.spawn_and_wait()?;
        Ok(server)
    }

    /// Start with [`TestServerOptions::default`].
    pub fn start_default() -> Result<TestServer> {
        TestServer::start(TestServerOptions::default())
    }

    /// `http://127.0.0.1:PORT`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The file the server's stderr goes to (appended to across restarts).
    pub fn stderr_path(&self) -> PathBuf {
        self.log_dir.path().join("stderr.log")
    }

    /// PID of the running child, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child process is alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Move the server's test clock forward (needs `test_clock`).
    pub fn advance_clock(&self, ms: u64) -> Result<()> {
        let body = format!("{{\"ms\":{ms}}}");
        let (status, text) = http_request(
            self.addr(),
            "POST",
            "/_runnel/test/clock/advance",
            Some(("application/json", body.as_bytes())),
        )?;
        if status != 200 {
            bail!("clock advance by {ms} ms: HTTP {status}: {text}");
        }
        Ok(())
    }

    /// SIGKILL the server (no chance to flush anything) and reap it.
    pub fn kill9(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("kill9: the server is not running");
        };
        // `Child::kill` sends SIGKILL on unix.
        child.kill().context("sending SIGKILL")?;
        child.wait().context("reaping the killed server")?;
        Ok(())
    }

    /// SIGTERM the server and wait for it to exit (SIGKILL after
    /// [`STOP_TIMEOUT_MS`], which is an error). Returns the exit status: a
    /// server that handles SIGTERM exits successfully, one that does not is
    /// reported as killed by signal 15; the caller decides.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("stop: the server is not running");
        };
        let pid = child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {pid} failed: {status}");
        }
        let deadline = Instant::now() + Duration::from_millis(STOP_TIMEOUT_MS);
        loop {
            if let Some(exit) = child.try_wait().context("waiting for the server")? {
                return Ok(exit);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "server did not exit within {STOP_TIMEOUT_MS} ms of SIGTERM\n{}",
                    self.stderr_tail(STDERR_TAIL_LINES)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start again on the same port and data directory. A running server is
    /// stopped with SIGTERM first; call [`TestServer::kill9`] before this to
    /// simulate a crash instead.
    pub fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            self.stop()?;
        }
        self.spawn_and_wait()
    }

    /// The last `lines` lines of the server's stderr, for failure messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail_of_file(&self.stderr_path(), lines).unwrap_or_else(|e| format!("(no stderr log: {e})"))
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "serve".to_string(),
            "--addr".to_string(),
            format!("127.0.0.1:{}", self.port),
            "--data-dir".to_string(),
            self.data_dir.path().display().to_string(),
            "--stream-transition-ms".to_string(),
            self.opts.stream_transition_ms.to_string(),
        ];
        if self.opts.test_clock {
            args.push("--test-clock".to_string());
        }
        if let Some(bytes) = self.opts.segment_bytes {
            args.push("--segment-bytes".to_string());
            args.push(bytes.to_string());
        }
        if let Some(durability) = self.opts.durability {
            args.push("--durability".to_string());
            args.push(durability.as_flag().to_string());
        }
        if let Some(quotas) = &self.opts.quotas {
            args.push("--quotas".to_string());
            args.push(quotas.clone());
        }
        args.extend(self.opts.extra_args.iter().cloned());
        args
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        self.starts_count += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .context("opening the stderr log")?;
        writeln!(log, "==== testkit: start #{} ====", self.starts_count)?;
        let stdout = log.try_clone()?;
        let child = Command::new(&self.bin)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + self.opts.startup_timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(exit) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "runnel exited during startup with {exit} (args {:?})\n{}",
                        self.args(),
                        self.stderr_tail(STDERR_TAIL_LINES)
                    );
                }
            }
            if let Ok((200, _)) = http_request(self.addr(), "GET", "/health", None) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                bail!(
                    "runnel did not answer GET /health with 200 within {:?} (args {:?})\n{}",
                    self.opts.startup_timeout,
                    self.args(),
                    self.stderr_tail(STDERR_TAIL_LINES)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- runnel stderr (tail, {}) ----\n{}",
                self.stderr_path().display(),
                self.stderr_tail(STDERR_TAIL_LINES)
            );
        }
    }
}

/// Path of the `runnel` binary under test.
pub fn runnel_bin() -> Result<PathBuf> {
    let path = if let Some(bin) = std::env::var_os("RUNNEL_BIN") {
        PathBuf::from(bin)
    } else if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        PathBuf::from(target).join("release").join("runnel")
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("target")
            .join("release")
            .join("runnel")
    };
    if !path.is_file() {
        bail!(
            "runnel binary not found at {} (build it with `cargo build --release -p runnel` or set RUNNEL_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding to find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Minimal blocking HTTP/1.1 request (`Connection: close`); returns status and body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Result<(u16, String)> {
    let timeout = Duration::from_millis(HTTP_TIMEOUT_MS);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let payload: &[u8] = match body {
        Some((content_type, bytes)) => {
            request.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
            bytes
        }
        None => &[],
    };
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(payload)?;
    let mut response = Vec::new();
    stream
        .take(HTTP_RESPONSE_BYTES_MAX)
        .read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("bad HTTP status line {status_line:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn tail_of_file(path: &Path, lines: usize) -> Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(STDERR_TAIL_BYTES_MAX);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    Ok(all[from..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().expect("free port");
        TcpListener::bind(("127.0.0.1", port)).expect("bind the free port");
    }

    #[test]
    fn tail_returns_last_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").expect("write");
        assert_eq!(tail_of_file(&path, 2).expect("tail"), "c\nd");
    }

    #[test]
    fn http_request_against_a_tiny_server() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).expect("read");
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .expect("write");
            request
        });
        let (status, body) = http_request(addr, "GET", "/health", None).expect("request");
        assert_eq!((status, body.as_str()), (200, "ok"));
        let request = handle.join().expect("join");
        assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        // Only meaningful when RUNNEL_BIN points nowhere; do not mutate the
        // environment of other tests, just check the message shape.
        if std::env::var_os("RUNNEL_BIN").is_none() && runnel_bin().is_err() {
            let err = runnel_bin().expect_err("no binary").to_string();
            assert!(err.contains("cargo build --release -p runnel"), "{err}");
        }
    }
}
