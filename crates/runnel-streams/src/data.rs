//! The data plane: PutRecord(s), GetShardIterator, GetRecords.

use std::sync::Arc;

use bytes::Bytes;
use runnel_log::{RecordIn, ShardKey};
use runnel_types::hash::partition_hash;
use runnel_types::limits::{
    GET_RECORDS_COUNT_MAX, GET_RECORDS_RESPONSE_BYTES_MAX, ITERATOR_TTL_MS,
    PARTITION_KEY_CHARS_MAX, PUT_RECORDS_COUNT_MAX, PUT_RECORDS_REQUEST_BYTES_MAX,
    RECORD_BYTES_MAX_CEILING,
};
use runnel_types::{Blob, SequenceNumber, ShardId, Timestamp};

use crate::api::*;
use crate::error::{Result, StreamsError};
use crate::metrics::{PutOp, ShardFigures};
use crate::service::{StreamEntry, StreamsService};
use crate::timefmt::iso8601;
use crate::token::IteratorPos;
use crate::validate::{self, Violations};

const ITERATOR_TYPES: [&str; 5] = [
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

/// Routes a record: ExplicitHashKey if given, else MD5 of the partition key.
fn hash_key_of(partition_key: &str, explicit: Option<&str>) -> Result<u128> {
    match explicit {
        None => Ok(partition_hash(partition_key)),
        Some(h) => h.parse::<u128>().map_err(|_| {
            StreamsError::InvalidArgument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {h}"
            ))
        }),
    }
}

/// The model constraints `put_records` checks per entry, all satisfied.
fn put_entry_is_valid(r: &PutRecordsRequestEntry) -> bool {
    r.data
        .as_ref()
        .is_some_and(|d| d.0.len() <= RECORD_BYTES_MAX_CEILING)
        && r.partition_key
            .as_deref()
            .is_some_and(|k| validate::char_len_within(k, 1, PARTITION_KEY_CHARS_MAX))
        && r.explicit_hash_key
            .as_deref()
            .is_none_or(|h| validate::is_decimal(h, 39))
}

impl StreamsService {
    fn record_bytes_max(entry: &StreamEntry) -> usize {
        (entry.rec.max_record_size_kib as usize) * 1024
    }

    pub async fn put_record(&self, input: PutRecordInput) -> Result<PutRecordOutput> {
        // In the order AWS reports them (the stream's name comes last).
        let mut v = Violations::new();
        v.decimal(
            "sequenceNumberForOrdering",
            input.sequence_number_for_ordering.as_deref(),
            129,
        );
        v.required("partitionKey", &input.partition_key);
        v.string(
            "partitionKey",
            input.partition_key.as_deref(),
            1,
            PARTITION_KEY_CHARS_MAX,
        );
        v.decimal("explicitHashKey", input.explicit_hash_key.as_deref(), 39);
        v.required("data", &input.data);
        v.blob_len(
            "data",
            input.data.as_ref().map(|d| d.0.len()),
            RECORD_BYTES_MAX_CEILING,
        );
        let entry = self.resolve(&input, v)?;
        let data = input.data.unwrap_or_default();
        let max = Self::record_bytes_max(&entry);
        if data.0.len() > max {
            let mut v = Violations::new();
            v.blob_len("data", Some(data.0.len()), max);
            v.finish()?;
        }
        self.writable(&entry)?;
        let (_gate, entry) = self.enter_write(entry.rec.uid, &entry.rec.name).await?;
        let sealer = self.record_sealer(&entry)?;
        let pk = input.partition_key.unwrap_or_default();
        let index = self.route(&entry, &pk, input.explicit_hash_key.as_deref())?;
        let key = entry.shard_key(index);
        let admitted = self
            .quotas
            .writes(
                self.quota_of(&entry),
                self.now_ms(),
                Self::record_bytes_max(&entry),
            )
            .admit(key, data.0.len() + pk.len());
        let record_bytes = (data.0.len() + pk.len()) as u64;
        if !admitted {
            let figures = ShardFigures {
                throttled: 1,
                ..Default::default()
            };
            self.record_put(&entry, PutOp::Record, &[(index, figures)], 0.0);
            return Err(StreamsError::ProvisionedThroughputExceeded(
                self.rate_exceeded(&entry, index),
            ));
        }
        let started = std::time::Instant::now();
        let record = match &sealer {
            Some(s) => s.seal(index, &pk, &data.0)?,
            None => RecordIn {
                partition_key: pk,
                data: Bytes::from(data.0),
            },
        };
        let groups = vec![(key, vec![record])];
        let pushed = self.fanout.listening(entry.rec.uid).then(|| groups.clone());
        let acks = self.log.append(groups).await?;
        if let Some(pushed) = pushed {
            self.publish(pushed, &acks);
        }
        let ack = acks
            .first()
            .ok_or_else(|| StreamsError::Internal("Internal service failure.".into()))?;
        let figures = ShardFigures {
            bytes: record_bytes,
            records: 1,
            throttled: 0,
        };
        self.record_put(
            &entry,
            PutOp::Record,
            &[(index, figures)],
            started.elapsed().as_secs_f64() * 1000.0,
        );
        Ok(PutRecordOutput {
            shard_id: ShardId(index).to_string(),
            sequence_number: entry.seq_at(index, ack.first_position).to_string(),
            encryption_type: Self::encryption_type(&entry),
        })
    }

    fn route(&self, entry: &StreamEntry, pk: &str, explicit: Option<&str>) -> Result<u32> {
        let key = hash_key_of(pk, explicit)?;
        entry
            .route(key)
            .ok_or_else(|| StreamsError::Internal(format!("no open shard covers hash key {key}")))
    }

    pub async fn put_records(&self, input: PutRecordsInput) -> Result<PutRecordsOutput> {
        let mut v = Violations::new();
        v.required("records", &input.records);
        let count = input.records.as_ref().map(Vec::len);
        v.list_len("records", count, 1, PUT_RECORDS_COUNT_MAX, "[…]");
        if let Some(records) = &input.records {
            for (i, r) in records.iter().enumerate().take(PUT_RECORDS_COUNT_MAX + 1) {
                // Valid entries (nearly all of them) cost no formatting.
                if put_entry_is_valid(r) {
                    continue;
                }
                let n = i + 1;
                v.required(&format!("records.{n}.member.data"), &r.data);
                v.required(
                    &format!("records.{n}.member.partitionKey"),
                    &r.partition_key,
                );
                v.blob_len(
                    &format!("records.{n}.member.data"),
                    r.data.as_ref().map(|d| d.0.len()),
                    RECORD_BYTES_MAX_CEILING,
                );
                v.string(
                    &format!("records.{n}.member.partitionKey"),
                    r.partition_key.as_deref(),
                    1,
                    PARTITION_KEY_CHARS_MAX,
                );
                v.decimal(
                    &format!("records.{n}.member.explicitHashKey"),
                    r.explicit_hash_key.as_deref(),
                    39,
                );
            }
        }
        let entry = self.resolve(&input, v)?;
        let records = input.records.unwrap_or_default();
        let max = Self::record_bytes_max(&entry);
        let mut total = 0usize;
        let mut v = Violations::new();
        for (i, r) in records.iter().enumerate() {
            let len = r.data.as_ref().map_or(0, |d| d.0.len());
            if len > max {
                v.blob_len(&format!("records.{}.member.data", i + 1), Some(len), max);
            }
            total += len + r.partition_key.as_ref().map_or(0, String::len);
        }
        v.finish()?;
        if total > PUT_RECORDS_REQUEST_BYTES_MAX {
            return Err(StreamsError::InvalidArgument(
                "Records size exceeds 5 MB limit".into(),
            ));
        }
        self.writable(&entry)?;
        let (_gate, entry) = self.enter_write(entry.rec.uid, &entry.rec.name).await?;

        let sealer = self.record_sealer(&entry)?;
        // Group by shard, keeping each record's place for the response;
        // records over their shard's quota fail alone, as AWS's do.
        let setting = self.quota_of(&entry);
        let mut placement: Vec<std::result::Result<(usize, usize), u32>> =
            Vec::with_capacity(records.len());
        let mut groups: Vec<(ShardKey, Vec<RecordIn>)> = Vec::new();
        let mut slot_of_shard: Vec<(u32, usize)> = Vec::new();
        let mut figures: Vec<(u32, ShardFigures)> = Vec::new();
        let started = std::time::Instant::now();
        // A block, so the admission lock is surely released before awaiting.
        {
            let mut admission =
                self.quotas
                    .writes(setting, self.now_ms(), Self::record_bytes_max(&entry));
            for r in records {
                let pk = r.partition_key.unwrap_or_default();
                let index = self.route(&entry, &pk, r.explicit_hash_key.as_deref())?;
                let data = r.data.unwrap_or_default().0;
                let bytes = (data.len() + pk.len()) as u64;
                let fig = match figures.iter_mut().find(|(s, _)| *s == index) {
                    Some((_, f)) => f,
                    None => {
                        figures.push((index, ShardFigures::default()));
                        &mut figures.last_mut().expect("just pushed").1
                    }
                };
                if !admission.admit(entry.shard_key(index), bytes as usize) {
                    fig.throttled += 1;
                    placement.push(Err(index));
                    continue;
                }
                fig.bytes += bytes;
                fig.records += 1;
                let slot = match slot_of_shard.iter().find(|(s, _)| *s == index) {
                    Some((_, slot)) => *slot,
                    None => {
                        groups.push((entry.shard_key(index), Vec::new()));
                        slot_of_shard.push((index, groups.len() - 1));
                        groups.len() - 1
                    }
                };
                placement.push(Ok((slot, groups[slot].1.len())));
                groups[slot].1.push(match &sealer {
                    Some(s) => s.seal(index, &pk, &data)?,
                    None => RecordIn {
                        partition_key: pk,
                        data: Bytes::from(data),
                    },
                });
            }
        }
        let shard_of_slot: Vec<u32> = groups.iter().map(|(k, _)| k.shard_index).collect();
        let pushed = self.fanout.listening(entry.rec.uid).then(|| groups.clone());
        let acks = if groups.is_empty() {
            Vec::new()
        } else {
            self.log.append(groups).await?
        };
        if let Some(pushed) = pushed {
            self.publish(pushed, &acks);
        }
        self.record_put(
            &entry,
            PutOp::Records,
            &figures,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        let mut failed = 0u32;
        let results = placement
            .into_iter()
            .map(|placed| match placed {
                Ok((slot, offset)) => {
                    let index = shard_of_slot[slot];
                    let position = acks[slot].first_position + offset as u64;
                    PutRecordsResultEntry {
                        sequence_number: Some(entry.seq_at(index, position).to_string()),
                        shard_id: Some(ShardId(index).to_string()),
                        error_code: None,
                        error_message: None,
                    }
                }
                Err(index) => {
                    failed += 1;
                    PutRecordsResultEntry {
                        sequence_number: None,
                        shard_id: None,
                        error_code: Some("ProvisionedThroughputExceededException"),
                        error_message: Some(self.rate_exceeded(&entry, index)),
                    }
                }
            })
            .collect();
        Ok(PutRecordsOutput {
            failed_record_count: failed,
            records: results,
            encryption_type: Self::encryption_type(&entry),
        })
    }

    /// Hands committed records to live SubscribeToShard subscriptions.
    fn publish(&self, groups: Vec<(ShardKey, Vec<RecordIn>)>, acks: &[runnel_log::AppendAck]) {
        for ((key, records), ack) in groups.into_iter().zip(acks) {
            self.fanout.publish(
                key,
                crate::fanout::PushedBatch {
                    first_position: ack.first_position,
                    count: records.len() as u64,
                    timestamp_ms: ack.timestamp_ms,
                    records: records
                        .into_iter()
                        .map(|r| (r.partition_key, r.data))
                        .collect(),
                },
            );
        }
    }

    fn rate_exceeded(&self, entry: &StreamEntry, index: u32) -> String {
        format!(
            "Rate exceeded for shard {} in stream {} under account {}.",
            ShardId(index),
            entry.rec.name,
            self.cfg.account_id
        )
    }

    pub fn get_shard_iterator(
        &self,
        input: GetShardIteratorInput,
    ) -> Result<GetShardIteratorOutput> {
        let (entry, index, position) = self.iterator_start(input)?;
        let iterator = IteratorPos {
            stream_uid: entry.rec.uid,
            shard_index: index,
            position,
        };
        Ok(GetShardIteratorOutput {
            shard_iterator: iterator.encode(&self.sealer, self.now_ms()),
        })
    }

    /// LATEST as a value an in-process reader can persist: the sequence
    /// number of the shard's last record (its starting sequence number when
    /// it has none), so AFTER_SEQUENCE_NUMBER from it reads exactly what
    /// arrives from now on. For runnel-runtime's reader; no AWS operation.
    pub fn latest_sequence_number(
        &self,
        stream: StreamOnlyInput,
        shard_id: &str,
    ) -> Result<String> {
        let mut v = Violations::new();
        v.shard_id("shardId", Some(shard_id));
        let entry = self.resolve(&stream, v)?;
        let index = self.shard_id_of(&entry, shard_id)?;
        let end = self.log.end_position(entry.shard_key(index));
        // Field f names the record at position f - 1: field `end` is the last.
        Ok(SequenceNumber::new(entry.epoch, index, end).to_string())
    }

    /// The log position a GetShardIterator-style request starts at.
    pub(crate) fn start_position(&self, input: GetShardIteratorInput) -> Result<u64> {
        self.iterator_start(input).map(|(_, _, p)| p)
    }

    fn iterator_start(&self, input: GetShardIteratorInput) -> Result<(Arc<StreamEntry>, u32, u64)> {
        let mut v = Violations::new();
        v.required("shardId", &input.shard_id);
        v.required("shardIteratorType", &input.shard_iterator_type);
        v.shard_id("shardId", input.shard_id.as_deref());
        v.one_of(
            "shardIteratorType",
            input.shard_iterator_type.as_deref(),
            &ITERATOR_TYPES,
        );
        v.decimal(
            "startingSequenceNumber",
            input.starting_sequence_number.as_deref(),
            129,
        );
        let entry = self.resolve(&input, v)?;
        let shard_id = input.shard_id.as_deref().unwrap_or_default();
        let index = self.shard_id_of(&entry, shard_id)?;
        self.writable(&entry)
            .map_err(|_| self.shard_not_found(&entry.rec.name, shard_id))?;
        let key = entry.shard_key(index);
        let now = self.now_ms();
        let kind = input.shard_iterator_type.as_deref().unwrap_or_default();
        let by_sequence = matches!(kind, "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER");
        if by_sequence != input.starting_sequence_number.is_some() {
            // AWS's wording, as recorded against the real service.
            return Err(StreamsError::InvalidArgument(format!(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {} StartingSequenceNumber.",
                if by_sequence { "no" } else { "also a" }
            )));
        }
        let position = match kind {
            "TRIM_HORIZON" => self
                .log
                .position_at_timestamp(key, now.saturating_sub(entry.retention_ms()))?,
            "LATEST" => self.log.end_position(key),
            "AT_TIMESTAMP" => {
                let ts = input.timestamp.ok_or_else(|| {
                    StreamsError::InvalidArgument(
                        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.".into(),
                    )
                })?;
                let ts_ms = ts.ms.max(0) as u64;
                if ts_ms > now {
                    return Err(StreamsError::InvalidArgument(format!(
                        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: {ts_ms}, currentTimestampInMillis: {now}"
                    )));
                }
                let horizon = now.saturating_sub(entry.retention_ms());
                self.log.position_at_timestamp(key, ts_ms.max(horizon))?
            }
            _ => {
                let seq = input.starting_sequence_number.as_deref().ok_or_else(|| {
                    StreamsError::InvalidArgument(format!(
                        "Must specify StartingSequenceNumber for ShardIteratorType {kind}."
                    ))
                })?;
                // Field f names the record at log position f - 1 (0: before
                // the first record), so AT starts at f - 1 and AFTER at f.
                let field = self.position_of(&entry, index, shard_id, seq)?;
                if kind == "AFTER_SEQUENCE_NUMBER" {
                    field
                } else {
                    field.saturating_sub(1)
                }
            }
        };
        Ok((entry, index, position))
    }

    /// The position field of a client's sequence number in this shard.
    fn position_of(
        &self,
        entry: &StreamEntry,
        index: u32,
        shard_id: &str,
        seq: &str,
    ) -> Result<u64> {
        let invalid = || {
            StreamsError::InvalidArgument(format!(
                "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard_id} in stream {} under account {} is invalid.",
                entry.rec.name, self.cfg.account_id
            ))
        };
        let parsed: SequenceNumber = seq.parse().map_err(|_| invalid())?;
        if parsed.stream_epoch() != entry.epoch {
            return Err(invalid());
        }
        if parsed.shard_index() != index {
            return Err(StreamsError::InvalidArgument(format!(
                "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
                ShardId(parsed.shard_index()),
                ShardId(index)
            )));
        }
        if parsed.position() > self.log.end_position(entry.shard_key(index)) + 1 {
            return Err(invalid());
        }
        Ok(parsed.position())
    }

    pub fn get_records(&self, input: GetRecordsInput) -> Result<GetRecordsOutput> {
        let mut v = Violations::new();
        v.required("shardIterator", &input.shard_iterator);
        v.string("shardIterator", input.shard_iterator.as_deref(), 1, 512);
        v.int("limit", input.limit, 1, Some(GET_RECORDS_COUNT_MAX as i64));
        v.stream_arn("streamARN", input.stream_arn.as_deref());
        v.finish()?;
        let token = input.shard_iterator.as_deref().unwrap_or_default();
        let (pos, issued_ms) = IteratorPos::decode(&self.sealer, token)
            .ok_or_else(|| StreamsError::InvalidArgument("Invalid ShardIterator.".into()))?;
        let now = self.now_ms();
        if now.saturating_sub(issued_ms) > ITERATOR_TTL_MS {
            return Err(StreamsError::ExpiredIterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is {} which is further in the future than the tolerated delay of {ITERATOR_TTL_MS} milliseconds.",
                iso8601(issued_ms),
                iso8601(now)
            )));
        }
        let entry: Arc<StreamEntry> = self.lookup_uid(pos.stream_uid).ok_or_else(|| {
            StreamsError::ResourceNotFound(format!(
                "Shard {} in stream with id {} under account {} does not exist",
                ShardId(pos.shard_index),
                pos.stream_uid,
                self.cfg.account_id
            ))
        })?;
        if let Some(arn) = input
            .stream_arn
            .as_deref()
            .and_then(runnel_types::StreamArn::parse)
        {
            if arn.stream_name != entry.rec.name {
                return Err(StreamsError::InvalidArgument(
                    "Invalid ShardIterator.".into(),
                ));
            }
        }
        let shard = entry
            .shard(pos.shard_index)
            .filter(|s| !entry.expired(s, now))
            .ok_or_else(|| {
                self.shard_not_found(&entry.rec.name, &ShardId(pos.shard_index).to_string())
            })?;
        let closed_at = shard.closed_at_position;
        let key = entry.shard_key(pos.shard_index);
        self.check_readable(&entry)?;
        let setting = self.quota_of(&entry);
        if !self.quotas.admit_read(key, setting, now) {
            self.record_read_throttle(&entry, pos.shard_index);
            return Err(StreamsError::ProvisionedThroughputExceeded(
                self.rate_exceeded(&entry, pos.shard_index),
            ));
        }
        let started = std::time::Instant::now();
        let limit = input
            .limit
            .map(|l| l as usize)
            .unwrap_or(GET_RECORDS_COUNT_MAX);
        let horizon = now.saturating_sub(entry.retention_ms());
        let out = self.log.read(
            key,
            pos.position,
            limit,
            GET_RECORDS_RESPONSE_BYTES_MAX,
            horizon,
        )?;
        let returned: usize = out
            .records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        self.quotas.charge_read(key, setting, returned);
        let end = self.log.end_position(key);
        let millis_behind_latest = if out.next_position >= end {
            0
        } else {
            let behind_from = out.records.last().map(|r| r.timestamp_ms);
            behind_from.map_or(0, |ts| now.saturating_sub(ts))
        };
        self.record_get(
            &entry,
            pos.shard_index,
            returned as u64,
            out.records.len() as u64,
            millis_behind_latest,
            started.elapsed().as_secs_f64() * 1000.0,
        );
        let records = out
            .records
            .into_iter()
            .map(|r| {
                let (partition_key, data, encrypted) =
                    self.open_record(&entry, pos.shard_index, r.position, r.partition_key, r.data)?;
                Ok(RecordOut {
                    sequence_number: entry.seq_at(pos.shard_index, r.position).to_string(),
                    approximate_arrival_timestamp: Timestamp::from_ms(r.timestamp_ms),
                    data: Blob(data.to_vec()),
                    partition_key,
                    encryption_type: encrypted.then_some("KMS"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let next = IteratorPos {
            position: out.next_position,
            ..pos
        };
        // The end of a closed shard: no further iterator, and where to go next.
        if closed_at.is_some_and(|c| out.next_position >= c) {
            return Ok(GetRecordsOutput {
                records,
                next_shard_iterator: None,
                millis_behind_latest: 0,
                child_shards: Some(self.child_shards(&entry, pos.shard_index)),
            });
        }
        Ok(GetRecordsOutput {
            records,
            next_shard_iterator: Some(next.encode(&self.sealer, now)),
            millis_behind_latest,
            child_shards: None,
        })
    }
}
