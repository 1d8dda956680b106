//! Enhanced fan-out: SubscribeToShard push delivery.
//!
//! Producers publish every committed batch to a per-shard broadcast channel
//! (only when someone listens). A subscription delivers from that channel
//! while it is caught up — no storage read on the hot path — and falls back
//! to reading the log whenever it sees a gap: it started behind, its channel
//! lagged (a slow reader: the bounded channel drops the oldest batches rather
//! than holding memory or blocking producers), or concurrent commits were
//! published out of order. Positions make this exact: a record is delivered
//! iff its position is the next one expected.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use runnel_log::ShardKey;
use tokio::sync::{broadcast, Notify};

/// Batches buffered per shard channel before a slow subscriber lags.
const CHANNEL_BATCHES_MAX: usize = 64;
/// Batches larger than this are announced without their records (readers
/// fetch them from the log), so a stalled subscriber pins at most
/// `CHANNEL_BATCHES_MAX × PUSH_BATCH_BYTES_MAX` (4 MiB) per shard.
pub const PUSH_BATCH_BYTES_MAX: usize = 64 * 1024;

/// Records committed together to one shard.
#[derive(Debug)]
pub struct PushedBatch {
    pub first_position: u64,
    /// How many records were committed (`records` is empty when they were
    /// too big to carry, and for a bare wake-up `count` is 0).
    pub count: u64,
    pub timestamp_ms: u64,
    pub records: Vec<(String, Bytes)>,
}

/// Cancels one subscription (consumer deregistered, stream deleted).
#[derive(Default)]
pub(crate) struct Cancel {
    pub flag: AtomicBool,
    pub notify: Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// (stream uid, consumer name, shard index)
pub(crate) type SubscriptionKey = (u64, String, u32);

#[derive(Default)]
pub struct FanoutHub {
    /// Ordered by stream, so a put looks only at its own stream's channels;
    /// read-locked on the put path.
    channels: RwLock<BTreeMap<ShardKey, broadcast::Sender<Arc<PushedBatch>>>>,
    active: Mutex<HashMap<SubscriptionKey, Arc<Cancel>>>,
}

impl FanoutHub {
    /// Whether any subscription listens on this stream (cheap check before
    /// cloning a batch for publishing).
    pub fn listening(&self, stream_uid: u64) -> bool {
        let first = ShardKey {
            stream_uid,
            shard_index: 0,
        };
        let last = ShardKey {
            stream_uid,
            shard_index: u32::MAX,
        };
        self.channels
            .read()
            .range(first..=last)
            .any(|(_, tx)| tx.receiver_count() > 0)
    }

    /// Wakes a shard's subscribers without data (e.g. the shard closed).
    pub fn nudge(&self, shard: ShardKey) {
        self.publish(
            shard,
            PushedBatch {
                first_position: 0,
                count: 0,
                timestamp_ms: 0,
                records: Vec::new(),
            },
        );
    }

    pub fn publish(&self, shard: ShardKey, mut batch: PushedBatch) {
        let bytes: usize = batch.records.iter().map(|(k, d)| k.len() + d.len()).sum();
        if bytes > PUSH_BATCH_BYTES_MAX {
            batch.records = Vec::new();
        }
        let tx = self.channels.read().get(&shard).cloned();
        if let Some(tx) = tx {
            if tx.receiver_count() > 0 {
                // An error only means nobody listens any more.
                let _ = tx.send(Arc::new(batch));
            }
        }
    }

    pub(crate) fn receiver(&self, shard: ShardKey) -> broadcast::Receiver<Arc<PushedBatch>> {
        let mut channels = self.channels.write();
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(shard)
            .or_insert_with(|| broadcast::channel(CHANNEL_BATCHES_MAX).0)
            .subscribe()
    }

    /// Registers an active subscription; `None` if one exists already.
    pub(crate) fn claim(&self, key: SubscriptionKey) -> Option<Arc<Cancel>> {
        let mut active = self.active.lock();
        if active.contains_key(&key) {
            return None;
        }
        let cancel = Arc::new(Cancel::default());
        active.insert(key, cancel.clone());
        Some(cancel)
    }

    pub(crate) fn release(&self, key: &SubscriptionKey) {
        self.active.lock().remove(key);
    }

    pub fn end_consumer(&self, stream_uid: u64, consumer: &str) {
        for ((uid, name, _), cancel) in self.active.lock().iter() {
            if *uid == stream_uid && name == consumer {
                cancel.cancel();
            }
        }
    }

    pub fn end_stream(&self, stream_uid: u64) {
        for ((uid, _, _), cancel) in self.active.lock().iter() {
            if *uid == stream_uid {
                cancel.cancel();
            }
        }
    }

    pub fn active_subscriptions(&self) -> usize {
        self.active.lock().len()
    }
}

/// How long a subscription lives, as on AWS.
pub const SUBSCRIPTION_TTL_MS: u64 = 5 * 60 * 1000;
/// An event is sent at least this often, records or not.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Per consumer per shard, as AWS's enhanced fan-out.
pub const PUSH_BYTES_PER_SEC: f64 = 2.0 * 1024.0 * 1024.0;
