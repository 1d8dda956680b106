//! A one-line progress display on stderr, redrawn a few times a second:
//! records sent, rate, failures, and a bar when the input size is known.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::format::thousands;

const REDRAW_MS: u64 = 100;
const BAR_WIDTH: usize = 24;

/// Counters the sender updates and the display reads.
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub retrying: AtomicU64,
    pub failed: AtomicU64,
    pub input_bytes: AtomicU64,
    done: AtomicBool,
}

pub struct Progress {
    pub counters: Arc<Counters>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing if `enabled`; `total_bytes` is the input size when known.
    pub fn start(enabled: bool, total_bytes: Option<u64>) -> Self {
        let counters = Arc::new(Counters::default());
        let task = enabled.then(|| {
            let c = Arc::clone(&counters);
            tokio::spawn(async move {
                let start = Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(REDRAW_MS));
                while !c.done.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let line = render(&c, start.elapsed(), total_bytes);
                    let mut err = std::io::stderr().lock();
                    // \r + erase line: the display stays on one line.
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                }
            })
        });
        Self { counters, task }
    }

    /// Stops and erases the display.
    pub async fn finish(mut self) {
        self.counters.done.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

fn render(c: &Counters, elapsed: Duration, total_bytes: Option<u64>) -> String {
    let sent = c.sent.load(Ordering::Relaxed);
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = (sent as f64 / secs) as u64;
    let mut line = String::new();
    if let Some(total) = total_bytes.filter(|t| *t > 0) {
        let frac = (c.input_bytes.load(Ordering::Relaxed) as f64 / total as f64).min(1.0);
        let filled = (frac * BAR_WIDTH as f64) as usize;
        line.push('[');
        line.extend(std::iter::repeat_n('#', filled));
        line.extend(std::iter::repeat_n('-', BAR_WIDTH - filled));
        line.push_str(&format!("] {:>3.0}%  ", frac * 100.0));
    }
    line.push_str(&format!(
        "{} records sent  {}/s  {:.1} s",
        thousands(sent),
        thousands(rate),
        secs
    ));
    let retrying = c.retrying.load(Ordering::Relaxed);
    if retrying > 0 {
        line.push_str(&format!("  retrying {}", thousands(retrying)));
    }
    let failed = c.failed.load(Ordering::Relaxed);
    if failed > 0 {
        line.push_str(&format!("  failed {}", thousands(failed)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_rate_and_bar() {
        let c = Counters::default();
        c.sent.store(5_000, Ordering::Relaxed);
        c.input_bytes.store(50, Ordering::Relaxed);
        let line = render(&c, Duration::from_secs(2), Some(100));
        assert_eq!(
            line,
            "[############------------]  50%  5,000 records sent  2,500/s  2.0 s"
        );
        c.retrying.store(3, Ordering::Relaxed);
        assert!(render(&c, Duration::from_secs(1), None).ends_with("retrying 3"));
    }
}
