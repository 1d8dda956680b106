//! One shard's read loop for `runnel tail`: GetShardIterator, then
//! GetRecords at most 5 times a second (AWS's per-shard read limit), backing
//! off on throttling and renewing expired iterators.

use std::time::Duration;

use rand::Rng;
use runnel_client::{
    ChildShard, Client, GetRecordsInput, GetShardIteratorInput, Record, ShardIteratorType,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::CliError;

/// AWS allows 5 GetRecords calls per second per shard.
const POLL_INTERVAL_MS_MIN: u64 = 200;
/// Pause after an empty read at the tip of a shard.
const IDLE_POLL_MS: u64 = 500;
const GET_RECORDS_LIMIT_MAX: u32 = 10_000;
const BACKOFF_BASE_MS: u64 = 250;
const BACKOFF_CAP_MS: u64 = 10_000;
/// Consecutive retryable failures before a shard reader gives up.
const FAILURES_MAX: u32 = 12;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    TrimHorizon,
    Latest,
    /// Epoch seconds.
    AtTimestamp(f64),
}

/// What shard readers report to the printer.
pub enum Event {
    Records {
        shard_id: String,
        records: Vec<Record>,
    },
    /// Without --follow: the shard is at its tip.
    CaughtUp {
        shard_id: String,
    },
    /// The shard is closed and fully read.
    Finished {
        shard_id: String,
        children: Vec<ChildShard>,
    },
    Failed {
        error: CliError,
    },
}

fn backoff(round: u32) -> Duration {
    let window = BACKOFF_BASE_MS
        .saturating_mul(1u64 << round.min(16))
        .min(BACKOFF_CAP_MS);
    let half = window / 2;
    Duration::from_millis(half + rand::thread_rng().gen_range(0..=half))
}

struct ShardReader {
    client: Client,
    endpoint: String,
    stream: String,
    shard_id: String,
}

impl ShardReader {
    fn error(&self, action: &str, e: runnel_client::Error) -> CliError {
        CliError::api(
            format!("{action} for {} of {}", self.shard_id, self.stream),
            &self.endpoint,
            e,
        )
    }

    async fn iterator(&self, start: Start, after: Option<&str>) -> Result<String, CliError> {
        let mut input = GetShardIteratorInput {
            stream_name: self.stream.clone(),
            shard_id: self.shard_id.clone(),
            ..Default::default()
        };
        match (after, start) {
            (Some(seq), _) => {
                input.shard_iterator_type = ShardIteratorType::AfterSequenceNumber;
                input.starting_sequence_number = Some(seq.to_owned());
            }
            (None, Start::TrimHorizon) => {
                input.shard_iterator_type = ShardIteratorType::TrimHorizon
            }
            (None, Start::Latest) => input.shard_iterator_type = ShardIteratorType::Latest,
            (None, Start::AtTimestamp(t)) => {
                input.shard_iterator_type = ShardIteratorType::AtTimestamp;
                input.timestamp = Some(t);
            }
        }
        let mut round = 0;
        loop {
            match self.client.get_shard_iterator(&input).await {
                Ok(out) => return Ok(out.shard_iterator),
                Err(e) if e.is_retryable() && round < FAILURES_MAX => {
                    tokio::time::sleep(backoff(round)).await;
                    round += 1;
                }
                Err(e) => return Err(self.error("get a shard iterator", e)),
            }
        }
    }

    async fn run(
        &self,
        start: Start,
        follow: bool,
        tx: &mpsc::Sender<Event>,
    ) -> Result<(), CliError> {
        let mut iterator = self.iterator(start, None).await?;
        let mut last_seq: Option<String> = None;
        let mut next_poll = Instant::now();
        let mut failures = 0u32;
        loop {
            tokio::time::sleep_until(next_poll).await;
            next_poll = Instant::now() + Duration::from_millis(POLL_INTERVAL_MS_MIN);
            let input = GetRecordsInput {
                shard_iterator: iterator.clone(),
                limit: Some(GET_RECORDS_LIMIT_MAX),
            };
            let out = match self.client.get_records(&input).await {
                Ok(out) => out,
                Err(e) if e.kind() == Some("ExpiredIteratorException") => {
                    iterator = self.iterator(start, last_seq.as_deref()).await?;
                    continue;
                }
                Err(e) if e.is_retryable() && failures < FAILURES_MAX => {
                    next_poll = Instant::now() + backoff(failures);
                    failures += 1;
                    continue;
                }
                Err(e) => return Err(self.error("read records", e)),
            };
            failures = 0;
            let empty = out.records.is_empty();
            if let Some(last) = out.records.last() {
                last_seq = Some(last.sequence_number.clone());
                let event = Event::Records {
                    shard_id: self.shard_id.clone(),
                    records: out.records,
                };
                if tx.send(event).await.is_err() {
                    return Ok(()); // the printer is done (e.g. --max reached)
                }
            }
            match out.next_shard_iterator {
                None => {
                    let _ = tx
                        .send(Event::Finished {
                            shard_id: self.shard_id.clone(),
                            children: out.child_shards,
                        })
                        .await;
                    return Ok(());
                }
                Some(next) => iterator = next,
            }
            if empty && out.millis_behind_latest.unwrap_or(0) == 0 {
                if !follow {
                    let _ = tx
                        .send(Event::CaughtUp {
                            shard_id: self.shard_id.clone(),
                        })
                        .await;
                    return Ok(());
                }
                next_poll = Instant::now() + Duration::from_millis(IDLE_POLL_MS);
            }
        }
    }
}

/// Reads one shard until it is finished (or, without `follow`, caught up),
/// reporting to `tx`. Errors are reported as [`Event::Failed`].
pub async fn read_shard(
    client: Client,
    endpoint: String,
    stream: String,
    shard_id: String,
    start: Start,
    follow: bool,
    tx: mpsc::Sender<Event>,
) {
    let reader = ShardReader {
        client,
        endpoint,
        stream,
        shard_id,
    };
    if let Err(error) = reader.run(start, follow, &tx).await {
        let _ = tx.send(Event::Failed { error }).await;
    }
}
