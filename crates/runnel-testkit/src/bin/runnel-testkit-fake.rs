//! A stand-in for `runnel serve` used only by runnel-testkit's own tests: it
//! accepts the same flags, answers `GET /health`, `POST
//! /_runnel/test/clock/advance` (echoing the total advance) and records each
//! start in `<data-dir>/starts`, so the testkit's process handling can be
//! tested without the real server.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

/// Largest request the fake reads.
const REQUEST_BYTES_MAX: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(
        args.get(1).map(String::as_str),
        Some("serve"),
        "usage: serve --addr A --data-dir D"
    );
    let addr = flag("--addr").expect("--addr");
    let data_dir = PathBuf::from(flag("--data-dir").expect("--data-dir"));
    let starts_path = data_dir.join("starts");
    let starts: u32 = std::fs::read_to_string(&starts_path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    std::fs::write(&starts_path, (starts + 1).to_string()).expect("write starts");
    eprintln!("fake runnel listening on {addr}, start #{}", starts + 1);

    let listener = TcpListener::bind(&addr).expect("bind");
    let mut advanced_ms: u64 = 0;
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let mut buf = vec![0u8; REQUEST_BYTES_MAX];
        let mut len = 0;
        // Read until the end of the headers and the declared body.
        while let Ok(n) = conn.read(&mut buf[len..]) {
            if n == 0 {
                break;
            }
            len += n;
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let content_length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= content_length || len == buf.len() {
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&buf[..len]).to_string();
        let (status, body) = if text.starts_with("GET /health ") {
            ("200 OK", "ok".to_string())
        } else if text.starts_with("POST /_runnel/test/clock/advance ") {
            let ms: Option<u64> = text
                .split_once("\"ms\":")
                .and_then(|(_, rest)| rest.trim_end_matches('}').trim().parse().ok());
            match ms {
                Some(ms) => {
                    advanced_ms += ms;
                    ("200 OK", format!("{{\"advancedMs\":{advanced_ms}}}"))
                }
                None => ("400 Bad Request", "bad body".to_string()),
            }
        } else {
            ("404 Not Found", String::new())
        };
        let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
