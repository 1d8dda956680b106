//! Shared pieces: the record payload layout, latency summaries, sequence
//! number ordering and output formatting.

use std::cmp::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Payload header: magic, run id, send time. Records shorter than this
/// carry no header (and cannot be attributed to a run or timed).
pub const MAGIC: &[u8; 4] = b"RNB1";
pub const HEADER_BYTES: usize = 4 + 8 + 8;

/// Microseconds, 1 µs to 1 hour, 3 significant digits.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("static histogram bounds are valid")
}

pub fn record_us(hist: &mut Histogram<u64>, micros: u128) {
    let v = u64::try_from(micros)
        .unwrap_or(u64::MAX)
        .clamp(1, LATENCY_US_MAX);
    hist.record(v)
        .expect("value clamped into the histogram range");
}

pub fn unix_nanos_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Writes the header into the front of `buf` if there is room for it.
pub fn stamp(buf: &mut [u8], run_id: u64, send_unix_ns: u64) {
    if buf.len() >= HEADER_BYTES {
        buf[..4].copy_from_slice(MAGIC);
        buf[4..12].copy_from_slice(&run_id.to_be_bytes());
        buf[12..20].copy_from_slice(&send_unix_ns.to_be_bytes());
    }
}

/// `(run_id, send_unix_ns)` of a payload written by [`stamp`].
pub fn parse_stamp(data: &[u8]) -> Option<(u64, u64)> {
    if data.len() < HEADER_BYTES || &data[..4] != MAGIC {
        return None;
    }
    let run = u64::from_be_bytes(data[4..12].try_into().ok()?);
    let sent = u64::from_be_bytes(data[12..20].try_into().ok()?);
    Some((run, sent))
}

/// Orders decimal sequence numbers numerically whatever their length
/// (implementations differ: 21 to 56 digits, sometimes zero-padded).
/// Non-numeric strings compare as text after numeric ones.
pub fn seq_cmp(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => {
            let a = a.trim_start_matches('0');
            let b = b.trim_start_matches('0');
            a.len().cmp(&b.len()).then_with(|| a.cmp(b))
        }
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn from_us(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Self {
                count: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        }
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }

    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (n={})",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.count
        )
    }
}

pub fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Decimal megabytes (10^6), as network tools count.
pub fn mb_per_sec(bytes: u64, secs: f64) -> f64 {
    per_sec(bytes, secs) / 1e6
}

/// `12345678.9` → `12,345,679`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints `rows` as an aligned two-column table under `title`.
pub fn print_table(title: &str, rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("── {title} ──");
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically() {
        assert_eq!(seq_cmp("9", "10"), Ordering::Less);
        assert_eq!(seq_cmp("0010", "9"), Ordering::Greater);
        assert_eq!(
            seq_cmp(
                "49590338271490256608559692538361571095921575989136588898",
                "49590338271490256608559692540925702759324208523137515618"
            ),
            Ordering::Less
        );
        assert_eq!(seq_cmp("123", "123"), Ordering::Equal);
    }

    #[test]
    fn stamp_round_trips() {
        let mut buf = vec![0u8; 100];
        stamp(&mut buf, 7, 42);
        assert_eq!(parse_stamp(&buf), Some((7, 42)));
        assert_eq!(parse_stamp(&buf[..10]), None);
    }

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
    }
}
