//! Per-shard throughput quotas, as AWS enforces them on provisioned shards:
//! writes 1 MiB/s and 1000 records/s, shared reads 2 MiB/s and 5 GetRecords/s.
//!
//! Token buckets refilled continuously from the service clock. Write buckets
//! hold one second of burst. The read-bytes bucket may go into debt: a
//! GetRecords is allowed while the balance is positive and then pays for
//! what it returned, so after a 10 MiB read the shard answers
//! `ProvisionedThroughputExceededException` for about the next five seconds,
//! which is AWS's documented rule.
//!
//! The rate multiplier comes from the server (`--quotas aws|off|<multiplier>`)
//! and can be overridden per stream with the tag `runnel:quotas`.

use std::collections::HashMap;

use parking_lot::Mutex;
use runnel_log::ShardKey;

pub const WRITE_BYTES_PER_SEC: f64 = 1024.0 * 1024.0;
pub const WRITE_RECORDS_PER_SEC: f64 = 1000.0;
pub const READ_BYTES_PER_SEC: f64 = 2.0 * 1024.0 * 1024.0;
pub const READ_CALLS_PER_SEC: f64 = 5.0;
/// Stream tag that overrides the server's quota setting for one stream.
pub const QUOTA_TAG: &str = "runnel:quotas";

/// How quotas apply: `None` = off, `Some(m)` = AWS's rates times `m`.
pub type QuotaSetting = Option<f64>;

/// Parses `aws`, `off` or a positive multiplier.
pub fn parse_setting(text: &str) -> Result<QuotaSetting, String> {
    match text.trim() {
        "aws" => Ok(Some(1.0)),
        "off" => Ok(None),
        other => match other.parse::<f64>() {
            Ok(m) if m.is_finite() && m > 0.0 => Ok(Some(m)),
            _ => Err(format!(
                "quotas must be 'aws', 'off' or a positive multiplier, not '{other}'"
            )),
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

impl Bucket {
    fn full(capacity: f64, now_ms: u64) -> Self {
        Bucket {
            tokens: capacity,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, rate: f64, capacity: f64, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.last_ms = now_ms.max(self.last_ms);
    }
}

#[derive(Debug)]
struct ShardQuota {
    write_bytes: Bucket,
    write_records: Bucket,
    read_bytes: Bucket,
    read_calls: Bucket,
    /// Bytes producers tried to write since the last `take_demand` (accepted or not).
    demand_bytes: u64,
}

impl ShardQuota {
    fn new(m: f64, now: u64, burst_bytes: f64) -> Self {
        ShardQuota {
            write_bytes: Bucket::full((WRITE_BYTES_PER_SEC * m).max(burst_bytes), now),
            write_records: Bucket::full(WRITE_RECORDS_PER_SEC * m, now),
            read_bytes: Bucket::full(READ_BYTES_PER_SEC * m, now),
            read_calls: Bucket::full(READ_CALLS_PER_SEC * m, now),
            demand_bytes: 0,
        }
    }
}

/// Lock stripes of the per-shard state: concurrent requests to different
/// shards (or streams) do not wait for each other.
const QUOTA_STRIPES: usize = 64;

type Stripe = Mutex<HashMap<ShardKey, ShardQuota>>;

pub struct Quotas {
    stripes: Box<[Stripe; QUOTA_STRIPES]>,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            stripes: Box::new(std::array::from_fn(|_| Mutex::default())),
        }
    }
}

/// A write admission session over one request: each record's decision takes
/// its shard's stripe lock only for the token arithmetic, so routing and
/// sealing run outside every lock.
pub struct WriteAdmission<'a> {
    quotas: &'a Quotas,
    setting: QuotaSetting,
    now_ms: u64,
    /// Largest write burst: one second of rate, or the stream's maximum
    /// record size when that is larger (AWS lets large-record streams burst
    /// to 10 MiB while averaging 1 MiB/s).
    burst_bytes: f64,
}

impl WriteAdmission<'_> {
    /// Whether a record of `bytes` (data + partition key) may be written now.
    pub fn admit(&mut self, shard: ShardKey, bytes: usize) -> bool {
        let mut stripe = self.quotas.stripe(shard).lock();
        let Some(m) = self.setting else {
            // Still count demand: on-demand scaling needs it with quotas off.
            let q = stripe
                .entry(shard)
                .or_insert_with(|| ShardQuota::new(1.0, self.now_ms, 0.0));
            q.demand_bytes += bytes as u64;
            return true;
        };
        let now = self.now_ms;
        let q = stripe
            .entry(shard)
            .or_insert_with(|| ShardQuota::new(m, now, self.burst_bytes));
        q.demand_bytes += bytes as u64;
        let (byte_rate, rec_rate) = (WRITE_BYTES_PER_SEC * m, WRITE_RECORDS_PER_SEC * m);
        q.write_bytes
            .refill(byte_rate, byte_rate.max(self.burst_bytes), now);
        q.write_records.refill(rec_rate, rec_rate, now);
        let bytes = bytes as f64;
        if q.write_bytes.tokens >= bytes && q.write_records.tokens >= 1.0 {
            q.write_bytes.tokens -= bytes;
            q.write_records.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Quotas {
    fn stripe(&self, shard: ShardKey) -> &Stripe {
        // Shards of one stream are spread over consecutive stripes.
        let h = shard.stream_uid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(shard.shard_index);
        &self.stripes[(h as usize) % QUOTA_STRIPES]
    }

    pub fn writes(
        &self,
        setting: QuotaSetting,
        now_ms: u64,
        burst_bytes: usize,
    ) -> WriteAdmission<'_> {
        WriteAdmission {
            quotas: self,
            setting,
            now_ms,
            burst_bytes: burst_bytes as f64,
        }
    }

    /// Admits a GetRecords call (5/s, and the shard's read bytes not in debt).
    pub fn admit_read(&self, shard: ShardKey, setting: QuotaSetting, now_ms: u64) -> bool {
        let Some(m) = setting else { return true };
        let mut shards = self.stripe(shard).lock();
        let q = shards
            .entry(shard)
            .or_insert_with(|| ShardQuota::new(m, now_ms, 0.0));
        let (call_rate, byte_rate) = (READ_CALLS_PER_SEC * m, READ_BYTES_PER_SEC * m);
        q.read_calls.refill(call_rate, call_rate, now_ms);
        q.read_bytes.refill(byte_rate, byte_rate, now_ms);
        if q.read_calls.tokens >= 1.0 && q.read_bytes.tokens > 0.0 {
            q.read_calls.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Charges what a GetRecords returned; the balance may go negative.
    pub fn charge_read(&self, shard: ShardKey, setting: QuotaSetting, bytes: usize) {
        if setting.is_none() {
            return;
        }
        if let Some(q) = self.stripe(shard).lock().get_mut(&shard) {
            q.read_bytes.tokens -= bytes as f64;
        }
    }

    /// Bytes producers tried to write per shard since the last call.
    pub fn take_demand(&self, stream_uid: u64) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        for stripe in self.stripes.iter() {
            out.extend(
                stripe
                    .lock()
                    .iter_mut()
                    .filter(|(k, _)| k.stream_uid == stream_uid)
                    .map(|(k, q)| (k.shard_index, std::mem::take(&mut q.demand_bytes))),
            );
        }
        out.sort_unstable_by_key(|(i, _)| *i);
        out
    }

    pub fn forget_stream(&self, stream_uid: u64) {
        for stripe in self.stripes.iter() {
            stripe.lock().retain(|k, _| k.stream_uid != stream_uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: ShardKey = ShardKey {
        stream_uid: 1,
        shard_index: 0,
    };

    #[test]
    fn write_records_per_second() {
        let q = Quotas::default();
        let mut w = q.writes(Some(1.0), 0, 0);
        let admitted = (0..1500).filter(|_| w.admit(K, 10)).count();
        assert_eq!(admitted, 1000);
        // Half a second later, half the records again.
        let mut w = q.writes(Some(1.0), 500, 0);
        assert_eq!((0..1000).filter(|_| w.admit(K, 10)).count(), 500);
    }

    #[test]
    fn write_bytes_per_second() {
        let q = Quotas::default();
        let mut w = q.writes(Some(1.0), 0, 0);
        assert!(w.admit(K, 1024 * 1024));
        assert!(!w.admit(K, 1));
        let mut w = q.writes(Some(2.0), 0, 0);
        // Multiplier applies to buckets created under it.
        assert!(w.admit(
            ShardKey {
                shard_index: 1,
                ..K
            },
            2 * 1024 * 1024
        ));
    }

    #[test]
    fn large_record_streams_burst_to_their_record_size() {
        let q = Quotas::default();
        let mut w = q.writes(Some(1.0), 0, 10 * 1024 * 1024);
        assert!(w.admit(K, 2 * 1024 * 1024));
        // The bucket starts full at one second's rate and refills up to 10 MiB.
        let mut w = q.writes(Some(1.0), 10_000, 10 * 1024 * 1024);
        assert!(w.admit(K, 9 * 1024 * 1024));
        assert!(!w.admit(K, 2 * 1024 * 1024));
    }

    #[test]
    fn quotas_off_admits_everything() {
        let q = Quotas::default();
        let mut w = q.writes(None, 0, 0);
        assert!((0..100_000).all(|_| w.admit(K, 1024 * 1024)));
        assert!(q.admit_read(K, None, 0));
    }

    #[test]
    fn reads_five_per_second_and_ten_mib_rule() {
        let q = Quotas::default();
        assert_eq!((0..10).filter(|_| q.admit_read(K, Some(1.0), 0)).count(), 5);
        let q = Quotas::default();
        assert!(q.admit_read(K, Some(1.0), 0));
        q.charge_read(K, Some(1.0), 10 * 1024 * 1024);
        // Debt of 8 MiB at 2 MiB/s: throttled for four seconds.
        assert!(!q.admit_read(K, Some(1.0), 1_000));
        assert!(!q.admit_read(K, Some(1.0), 3_900));
        assert!(q.admit_read(K, Some(1.0), 4_100));
    }

    #[test]
    fn settings_parse() {
        assert_eq!(parse_setting("aws"), Ok(Some(1.0)));
        assert_eq!(parse_setting("off"), Ok(None));
        assert_eq!(parse_setting("2.5"), Ok(Some(2.5)));
        assert!(parse_setting("-1").is_err());
        assert!(parse_setting("fast").is_err());
    }
}
