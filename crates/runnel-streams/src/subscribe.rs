//! SubscribeToShard: one subscription's event loop (see `fanout` for the design).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use runnel_catalog::StreamState;
use runnel_log::{ShardKey, StoredRecord};
use runnel_types::{Blob, ShardId, Timestamp};
use tokio::sync::broadcast;

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::fanout::{
    Cancel, PushedBatch, SubscriptionKey, HEARTBEAT, PUSH_BYTES_PER_SEC, SUBSCRIPTION_TTL_MS,
};
use crate::service::StreamsService;
use crate::validate::Violations;

/// Records per event and per catch-up read.
const EVENT_RECORDS_MAX: usize = 10_000;
const EVENT_BYTES_MAX: usize = 1024 * 1024;

pub struct Subscription {
    svc: Arc<StreamsService>,
    key: SubscriptionKey,
    shard: ShardKey,
    stream_name: String,
    epoch_entry_uid: u64,
    next: u64,
    started_ms: u64,
    rx: broadcast::Receiver<Arc<PushedBatch>>,
    pending: VecDeque<StoredRecord>,
    must_read: bool,
    cancel: Arc<Cancel>,
    budget: Option<(f64, u64)>,
    rate: Option<f64>,
    finished: bool,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.svc.fanout.release(&self.key);
    }
}

impl StreamsService {
    pub fn subscribe_to_shard(
        self: &Arc<Self>,
        input: SubscribeToShardInput,
    ) -> Result<Subscription> {
        let mut v = Violations::new();
        v.required("consumerARN", &input.consumer_arn);
        v.required("shardId", &input.shard_id);
        v.required("startingPosition", &input.starting_position);
        v.shard_id("shardId", input.shard_id.as_deref());
        let kind = input
            .starting_position
            .as_ref()
            .and_then(|p| p.position_type.as_deref());
        if let Some(p) = &input.starting_position {
            v.required("startingPosition.type", &p.position_type);
            v.decimal(
                "startingPosition.sequenceNumber",
                p.sequence_number.as_deref(),
                129,
            );
        }
        v.one_of(
            "startingPosition.type",
            kind,
            &[
                "AT_SEQUENCE_NUMBER",
                "AFTER_SEQUENCE_NUMBER",
                "TRIM_HORIZON",
                "LATEST",
                "AT_TIMESTAMP",
            ],
        );
        let (entry, consumer) =
            self.resolve_consumer(None, None, input.consumer_arn.as_deref(), v)?;
        if self.consumer_state(&consumer) != Some(StreamState::Active) {
            return Err(StreamsError::ResourceInUse(format!(
                "Consumer {} is not in ACTIVE state.",
                input.consumer_arn.as_deref().unwrap_or_default()
            )));
        }
        let shard_id = input.shard_id.as_deref().unwrap_or_default();
        let index = self.shard_id_of(&entry, shard_id)?;
        let start = input.starting_position.unwrap_or_default();
        let iter = GetShardIteratorInput {
            stream_name: Some(entry.rec.name.clone()),
            stream_arn: None,
            shard_id: Some(shard_id.to_string()),
            shard_iterator_type: start.position_type,
            starting_sequence_number: start.sequence_number,
            timestamp: start.timestamp,
        };
        let key = (entry.rec.uid, consumer.name.clone(), index);
        let shard = entry.shard_key(index);
        // Listen before computing the start, so nothing committed in between is missed.
        let rx = self.fanout.receiver(shard);
        let next = self.start_position(iter)?;
        let cancel = self.fanout.claim(key.clone()).ok_or_else(|| {
            StreamsError::ResourceInUse(format!(
                "Another active subscription exists for this consumer: {}:{}:{}:{}",
                self.cfg.account_id,
                entry.rec.name,
                ShardId(index),
                consumer.name
            ))
        })?;
        let rate = self.quota_of(&entry).map(|m| PUSH_BYTES_PER_SEC * m);
        self.metric(&entry, "SubscribeToShard.Success", 1.0, "Count");
        let now = self.now_ms();
        Ok(Subscription {
            svc: self.clone(),
            key,
            shard,
            stream_name: entry.rec.name.clone(),
            epoch_entry_uid: entry.rec.uid,
            next,
            started_ms: now,
            rx,
            pending: VecDeque::new(),
            must_read: true,
            cancel,
            budget: rate.map(|r| (r, now)),
            rate,
            finished: false,
        })
    }
}

impl Subscription {
    /// The next event, or `None` when the subscription is over (5 minutes
    /// passed, the consumer was deregistered, or the closed shard's end was sent).
    pub async fn next_event(&mut self) -> Option<Result<SubscribeToShardEvent>> {
        let heartbeat_at = tokio::time::Instant::now() + HEARTBEAT;
        loop {
            if self.finished || self.cancel.is_cancelled() {
                return None;
            }
            if self.svc.now_ms().saturating_sub(self.started_ms) >= SUBSCRIPTION_TTL_MS {
                return None;
            }
            let Some(entry) = self.svc.lookup_uid(self.epoch_entry_uid) else {
                return Some(Err(self.svc.not_found(&self.stream_name)));
            };
            let closed_at = entry
                .shard(self.shard.shard_index)
                .and_then(|s| s.closed_at_position);
            self.drain_channel();
            let end = self.svc.log.end_position(self.shard);
            if self.pending.is_empty() && (self.must_read || self.next < end) {
                if let Err(e) = self.read_log().await {
                    return Some(Err(e));
                }
            }
            if !self.pending.is_empty() {
                self.pay_budget().await;
                return Some(self.event(&entry, end, None));
            }
            if closed_at.is_some_and(|c| self.next >= c) {
                self.finished = true;
                let children = self.svc.child_shards(&entry, self.shard.shard_index);
                return Some(self.event(&entry, end, Some(children)));
            }
            // Caught up: wait for a push, a heartbeat, or cancellation.
            tokio::select! {
                got = self.rx.recv() => match got {
                    Ok(batch) => self.accept(&batch),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.must_read = true,
                    Err(broadcast::error::RecvError::Closed) => self.must_read = true,
                },
                _ = tokio::time::sleep_until(heartbeat_at) => {
                    return Some(self.event(&entry, end, None));
                }
                _ = self.cancel.notify.notified() => {}
            }
        }
    }

    fn drain_channel(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(batch) => self.accept(&batch),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.must_read = true,
                Err(_) => return,
            }
        }
    }

    /// Takes the records of a pushed batch that come next; a gap means the
    /// log has to fill it.
    fn accept(&mut self, batch: &PushedBatch) {
        if batch.count == 0 {
            return; // a wake-up: the loop re-checks the shard
        }
        let expected = self.next + self.pending.len() as u64;
        let end = batch.first_position + batch.count;
        if batch.records.is_empty() {
            // Announced without records: fetch them from the log if they are new.
            if end > expected {
                self.must_read = true;
            }
            return;
        }
        if end <= expected {
            return;
        }
        if batch.first_position > expected {
            self.must_read = true;
            return;
        }
        let skip = (expected - batch.first_position) as usize;
        for (i, (pk, data)) in batch.records.iter().enumerate().skip(skip) {
            self.pending.push_back(StoredRecord {
                position: batch.first_position + i as u64,
                timestamp_ms: batch.timestamp_ms,
                partition_key: pk.clone(),
                data: data.clone(),
            });
        }
    }

    async fn read_log(&mut self) -> Result<()> {
        let (svc, shard, from) = (self.svc.clone(), self.shard, self.next);
        let entry = svc
            .lookup_uid(shard.stream_uid)
            .ok_or_else(|| svc.not_found(&self.stream_name))?;
        let horizon = svc.now_ms().saturating_sub(entry.retention_ms());
        let out = tokio::task::spawn_blocking(move || {
            svc.log
                .read(shard, from, EVENT_RECORDS_MAX, EVENT_BYTES_MAX, horizon)
        })
        .await
        .map_err(|_| StreamsError::Internal("Internal service failure.".into()))??;
        self.must_read = false;
        if out.records.is_empty() {
            // Skipped expired records still move us forward.
            self.next = self.next.max(out.next_position);
        }
        self.pending.extend(out.records);
        Ok(())
    }

    /// Waits until the consumer's 2 MiB/s budget covers the pending bytes.
    async fn pay_budget(&mut self) {
        let (Some(rate), Some((tokens, last_ms))) = (self.rate, self.budget) else {
            return;
        };
        let bytes: usize = self
            .pending
            .iter()
            .take(EVENT_RECORDS_MAX)
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        let now = self.svc.now_ms();
        let available = (tokens + now.saturating_sub(last_ms) as f64 / 1000.0 * rate).min(rate);
        let after = available - bytes as f64;
        if after < 0.0 {
            let wait = Duration::from_secs_f64((-after / rate).min(5.0));
            tokio::time::sleep(wait).await;
        }
        self.budget = Some((after, self.svc.now_ms()));
    }

    fn event(
        &mut self,
        entry: &crate::service::StreamEntry,
        end: u64,
        children: Option<Vec<ChildShardOut>>,
    ) -> Result<SubscribeToShardEvent> {
        let index = self.shard.shard_index;
        let mut records = Vec::new();
        let mut bytes = 0usize;
        let mut last_ts = None;
        while let Some(r) = self.pending.front() {
            if r.position < self.next {
                self.pending.pop_front();
                continue;
            }
            if records.len() >= EVENT_RECORDS_MAX
                || (bytes > 0 && bytes + r.data.len() > EVENT_BYTES_MAX)
            {
                break;
            }
            let Some(r) = self.pending.pop_front() else {
                break;
            };
            bytes += r.data.len();
            last_ts = Some(r.timestamp_ms);
            self.next = r.position + 1;
            let (partition_key, data, encrypted) =
                self.svc
                    .open_record(entry, index, r.position, r.partition_key, r.data)?;
            records.push(RecordOut {
                sequence_number: entry.seq_at(index, r.position).to_string(),
                approximate_arrival_timestamp: Timestamp::from_ms(r.timestamp_ms),
                data: Blob(data.to_vec()),
                partition_key,
                encryption_type: encrypted.then_some("KMS"),
            });
        }
        let behind = match last_ts {
            Some(ts) if self.next < end => self.svc.now_ms().saturating_sub(ts),
            _ => 0,
        };
        // AFTER_SEQUENCE_NUMBER with this resumes exactly at `next`.
        let continuation = children
            .is_none()
            .then(|| runnel_types::SequenceNumber::new(entry.epoch, index, self.next).to_string());
        self.svc.metric(
            entry,
            "SubscribeToShardEvent.Records",
            records.len() as f64,
            "Count",
        );
        self.svc
            .metric(entry, "SubscribeToShardEvent.Bytes", bytes as f64, "Bytes");
        self.svc.metric(
            entry,
            "SubscribeToShardEvent.MillisBehindLatest",
            behind as f64,
            "Milliseconds",
        );
        self.svc
            .metric(entry, "SubscribeToShardEvent.Success", 1.0, "Count");
        Ok(SubscribeToShardEvent {
            records,
            continuation_sequence_number: continuation,
            millis_behind_latest: behind,
            child_shards: children,
        })
    }
}
