//! Reading a Data Stream in process: the way Firehose, Analytics and
//! event-source mappings consume their source stream, through the streams
//! service's own Rust API (ListShards, GetShardIterator, GetRecords), never
//! over HTTP.
//!
//! A [`StreamReader`] reads every shard from a [`Checkpoint`], following
//! resharding as KCL does: a shard is read only once its parents (the
//! parent and, after a merge, the adjacent parent) have been read to their
//! end or have left retention, so records of one partition key come out in
//! order across a split or merge. Within a shard records come out in
//! sequence-number order, each once.
//!
//! Reads are charged to the stream's read quotas like any consumer's; a
//! throttled shard is skipped for that call (`ReadBatch::throttled`). The
//! calls are synchronous page-cache reads, as the service's GetRecords is.
//!
//! The reader addresses the stream by name or ARN. Sequence numbers belong
//! to one incarnation of a stream: a checkpoint taken before the stream was
//! deleted and re-created under the same name fails with InvalidArgument.

mod checkpoint;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use runnel_streams::api::{
    GetRecordsInput, GetShardIteratorInput, ListShardsInput, ShardOut, StreamOnlyInput,
};
use runnel_streams::{StreamsError, StreamsService};
use runnel_types::limits::{GET_RECORDS_COUNT_MAX, LIST_SHARDS_RESULTS_MAX};
use runnel_types::Timestamp;

pub use checkpoint::{Checkpoint, StartingPosition};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Bytes,
    /// When the stream accepted the record, ms since the epoch.
    pub approximate_arrival_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadBatch {
    /// In order per shard; a child shard's records after its parents'.
    pub records: Vec<ReadRecord>,
    /// Shards read to their end in this batch, after their last records.
    pub finished_shards: Vec<String>,
    /// The largest MillisBehindLatest among the shards read.
    pub millis_behind_latest: u64,
    /// Some shard was over its read quota and was skipped.
    pub throttled: bool,
    /// The checkpoint's starting position, once fixed (see [`Checkpoint`]).
    pub start: Option<StartingPosition>,
    /// Positions fixed by a `Latest` start (shard id, sequence number to
    /// read after): in the first batch of a new checkpoint only.
    pub start_positions: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReaderError {
    #[error("cannot list the shards of stream {stream}: {source}")]
    List {
        stream: String,
        source: StreamsError,
    },
    #[error("cannot read shard {shard} of stream {stream}: {source}")]
    Shard {
        stream: String,
        shard: String,
        source: StreamsError,
    },
}

impl ReaderError {
    /// The streams service's error (ResourceNotFound when the stream is gone).
    pub fn streams_error(&self) -> &StreamsError {
        match self {
            ReaderError::List { source, .. } | ReaderError::Shard { source, .. } => source,
        }
    }
}

pub struct StreamReader {
    service: Arc<StreamsService>,
    stream: String,
    configured_start: StartingPosition,
    checkpoint: Checkpoint,
    /// Open iterators by shard id; made again from the checkpoint when
    /// missing or expired.
    iterators: HashMap<String, String>,
    /// Rotates which shard is read first, so no shard starves.
    next_first: usize,
}

impl StreamReader {
    /// A reader of `stream` (name or ARN). With a checkpoint it resumes
    /// where that left off; `start` applies only to a checkpoint whose
    /// start is not fixed yet (a new one).
    pub fn new(
        service: Arc<StreamsService>,
        stream: &str,
        start: StartingPosition,
        checkpoint: Option<Checkpoint>,
    ) -> Self {
        StreamReader {
            service,
            stream: stream.to_owned(),
            configured_start: start,
            checkpoint: checkpoint.unwrap_or_default(),
            iterators: HashMap::new(),
            next_first: 0,
        }
    }

    /// Everything handed out so far.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Reads up to `records_max` records (at least 1) across the shards
    /// that are ready. An empty batch means nothing new yet.
    pub fn read(&mut self, records_max: usize) -> Result<ReadBatch, ReaderError> {
        let records_max = records_max.max(1);
        let mut batch = ReadBatch::default();
        let shards = self.list()?;
        self.fix_start(&shards, &mut batch)?;
        batch.start = self.checkpoint.start;
        let listed: BTreeSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
        // Shards that left retention hold back nothing and need no position.
        self.checkpoint
            .finished
            .retain(|id| listed.contains(id.as_str()));
        self.checkpoint
            .shards
            .retain(|id, _| listed.contains(id.as_str()));
        loop {
            let ready = self.ready_shards(&shards, &listed);
            if ready.is_empty() {
                break;
            }
            let first = self.next_first % ready.len();
            let mut any_finished = false;
            for shard in ready[first..].iter().chain(&ready[..first]) {
                let remaining = records_max - batch.records.len();
                if remaining == 0 {
                    break;
                }
                match self.read_shard(shard, remaining, &mut batch) {
                    Ok(finished) => any_finished |= finished,
                    Err(e)
                        if batch.records.is_empty()
                            && batch.finished_shards.is_empty()
                            && batch.start_positions.is_empty() =>
                    {
                        return Err(e)
                    }
                    // What was read is handed over; the error comes back next call.
                    Err(e) => {
                        tracing::debug!(error = %e, "stopping a read at an error");
                        return Ok(batch);
                    }
                }
            }
            // A finished parent may have made children ready.
            if !any_finished || batch.records.len() >= records_max {
                break;
            }
        }
        self.next_first = self.next_first.wrapping_add(1);
        Ok(batch)
    }

    fn list(&self) -> Result<Vec<ShardOut>, ReaderError> {
        let err = |source| ReaderError::List {
            stream: self.stream.clone(),
            source,
        };
        let (name, arn) = self.stream_ref();
        let mut out = self
            .service
            .list_shards(ListShardsInput {
                stream_name: name.clone(),
                stream_arn: arn.clone(),
                max_results: Some(i64::from(LIST_SHARDS_RESULTS_MAX)),
                ..Default::default()
            })
            .map_err(err)?;
        let mut shards = std::mem::take(&mut out.shards);
        while let Some(token) = out.next_token.take() {
            out = self
                .service
                .list_shards(ListShardsInput {
                    next_token: Some(token),
                    max_results: Some(i64::from(LIST_SHARDS_RESULTS_MAX)),
                    ..Default::default()
                })
                .map_err(err)?;
            shards.append(&mut out.shards);
        }
        Ok(shards)
    }

    fn stream_ref(&self) -> (Option<String>, Option<String>) {
        if self.stream.starts_with("arn:") {
            (None, Some(self.stream.clone()))
        } else {
            (Some(self.stream.clone()), None)
        }
    }

    /// On a new checkpoint, a `Latest` start gives every open shard its
    /// current end as its position and takes closed shards as finished;
    /// shards that appear later are new, so read from their start.
    fn fix_start(&mut self, shards: &[ShardOut], batch: &mut ReadBatch) -> Result<(), ReaderError> {
        if self.checkpoint.start.is_some() {
            return Ok(());
        }
        if self.configured_start == StartingPosition::Latest {
            let (stream_name, stream_arn) = self.stream_ref();
            for s in shards {
                if self.checkpoint.shards.contains_key(&s.shard_id)
                    || self.checkpoint.finished.contains(&s.shard_id)
                {
                    continue;
                }
                if s.sequence_number_range.ending_sequence_number.is_some() {
                    self.checkpoint.finish(&s.shard_id);
                    batch.finished_shards.push(s.shard_id.clone());
                    continue;
                }
                let seq = self
                    .service
                    .latest_sequence_number(
                        StreamOnlyInput {
                            stream_name: stream_name.clone(),
                            stream_arn: stream_arn.clone(),
                        },
                        &s.shard_id,
                    )
                    .map_err(|source| self.shard_error(&s.shard_id, source))?;
                self.checkpoint.advance(&s.shard_id, &seq);
                batch.start_positions.push((s.shard_id.clone(), seq));
            }
        }
        self.checkpoint.start = Some(self.configured_start);
        Ok(())
    }

    /// Unfinished shards whose parents are finished or gone, by shard id.
    fn ready_shards(&self, shards: &[ShardOut], listed: &BTreeSet<&str>) -> Vec<String> {
        let done = |p: &Option<String>| {
            p.as_deref()
                .is_none_or(|p| self.checkpoint.finished.contains(p) || !listed.contains(p))
        };
        let mut ready: Vec<String> = shards
            .iter()
            .filter(|s| !self.checkpoint.finished.contains(&s.shard_id))
            .filter(|s| done(&s.parent_shard_id) && done(&s.adjacent_parent_shard_id))
            .map(|s| s.shard_id.clone())
            .collect();
        ready.sort();
        ready
    }

    fn iterator(
        &self,
        shard: &str,
        kind: &str,
        seq: Option<String>,
        ts: Option<u64>,
    ) -> Result<String, ReaderError> {
        let (stream_name, stream_arn) = self.stream_ref();
        self.service
            .get_shard_iterator(GetShardIteratorInput {
                stream_name,
                stream_arn,
                shard_id: Some(shard.to_owned()),
                shard_iterator_type: Some(kind.to_owned()),
                starting_sequence_number: seq,
                timestamp: ts.map(Timestamp::from_ms),
            })
            .map(|o| o.shard_iterator)
            .map_err(|source| self.shard_error(shard, source))
    }

    /// Where `shard` continues: after its checkpoint, else the start.
    fn resume_iterator(&self, shard: &str) -> Result<String, ReaderError> {
        if let Some(seq) = self.checkpoint.shards.get(shard) {
            return self.iterator(shard, "AFTER_SEQUENCE_NUMBER", Some(seq.clone()), None);
        }
        match self.checkpoint.start.unwrap_or(self.configured_start) {
            // Under a fixed Latest start, a shard without a position was
            // created after the start: all of it is new.
            StartingPosition::TrimHorizon | StartingPosition::Latest => {
                self.iterator(shard, "TRIM_HORIZON", None, None)
            }
            StartingPosition::AtTimestamp { ms } => {
                // AT_TIMESTAMP may not lie in the future of the service clock.
                let ms = ms.min(self.service.now_ms());
                self.iterator(shard, "AT_TIMESTAMP", None, Some(ms))
            }
        }
    }

    fn shard_error(&self, shard: &str, source: StreamsError) -> ReaderError {
        ReaderError::Shard {
            stream: self.stream.clone(),
            shard: shard.to_owned(),
            source,
        }
    }

    /// One GetRecords on `shard`; true when it reached the shard's end.
    fn read_shard(
        &mut self,
        shard: &str,
        limit: usize,
        batch: &mut ReadBatch,
    ) -> Result<bool, ReaderError> {
        let mut retried = false;
        let out = loop {
            let iterator = match self.iterators.remove(shard) {
                Some(it) => it,
                None => self.resume_iterator(shard)?,
            };
            let input = GetRecordsInput {
                shard_iterator: Some(iterator.clone()),
                limit: Some(limit.min(GET_RECORDS_COUNT_MAX) as i64),
                stream_arn: None,
            };
            match self.service.get_records(input) {
                Ok(out) => break out,
                Err(StreamsError::ExpiredIterator(_)) if !retried => retried = true,
                Err(StreamsError::ProvisionedThroughputExceeded(_)) => {
                    self.iterators.insert(shard.to_owned(), iterator);
                    batch.throttled = true;
                    return Ok(false);
                }
                Err(e) => return Err(self.shard_error(shard, e)),
            }
        };
        batch.millis_behind_latest = batch.millis_behind_latest.max(out.millis_behind_latest);
        for r in out.records {
            self.checkpoint.advance(shard, &r.sequence_number);
            batch.records.push(ReadRecord {
                shard_id: shard.to_owned(),
                sequence_number: r.sequence_number,
                partition_key: r.partition_key,
                data: Bytes::from(r.data.0),
                approximate_arrival_ms: r.approximate_arrival_timestamp.ms.max(0) as u64,
            });
        }
        match out.next_shard_iterator {
            Some(next) => {
                self.iterators.insert(shard.to_owned(), next);
                Ok(false)
            }
            None => {
                self.checkpoint.finish(shard);
                batch.finished_shards.push(shard.to_owned());
                Ok(true)
            }
        }
    }
}
