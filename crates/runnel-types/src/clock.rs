//! Time as a dependency, so retention and iterator expiry are testable
//! without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// The system clock plus an adjustable offset. Tests (and `runnel serve
/// --test-clock`) move it forward to exercise retention and expiry.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    offset_ms: Arc<AtomicI64>,
    frozen_at_ms: Option<Arc<AtomicI64>>,
}

impl ManualClock {
    /// Follows the system clock, shifted by whatever `advance` adds.
    pub fn offset() -> Self {
        ManualClock::default()
    }

    /// Stands still at `ms` until advanced.
    pub fn frozen(ms: u64) -> Self {
        ManualClock {
            offset_ms: Arc::default(),
            frozen_at_ms: Some(Arc::new(AtomicI64::new(ms as i64))),
        }
    }

    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        let base = match &self.frozen_at_ms {
            Some(at) => at.load(Ordering::SeqCst),
            None => SystemClock.now_ms() as i64,
        };
        (base + self.offset_ms.load(Ordering::SeqCst)).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::frozen(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance_ms(500);
        assert_eq!(c.now_ms(), 1500);
        let d = c.clone();
        d.advance_ms(1);
        assert_eq!(c.now_ms(), 1501);
    }
}
