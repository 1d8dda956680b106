//! `runnel tail`: reads every shard of a stream, following resharding the
//! way a KCL consumer does — a child shard is read only once all its parents
//! are read to their end, so records of one partition key come out in order.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::Args;
use runnel_client::{ChildShard, HashKeyRange, Record};
use serde_json::json;
use tokio::sync::mpsc;

use crate::format::{parse_time, payload_line, rfc3339};
use crate::reader::{read_shard, Event, Start};
use crate::{emit, CliError, Connection, Ctx, Output};

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Stream to read.
    pub stream: String,
    /// Where to start: trim-horizon (oldest), latest (new records only), or a
    /// time (RFC 3339 like 2024-05-01T12:00:00Z, or epoch seconds)
    /// [default: latest when following, trim-horizon with --no-follow]
    #[arg(long)]
    pub from: Option<String>,
    /// Print only each record's payload (exact bytes, newline-terminated).
    #[arg(long)]
    pub raw: bool,
    /// Print only records with this partition key.
    #[arg(long)]
    pub key: Option<String>,
    /// Stop after printing this many records.
    #[arg(long)]
    pub max: Option<u64>,
    /// Keep waiting for new records (the default).
    #[arg(long, overrides_with = "no_follow")]
    pub follow: bool,
    /// Stop once every shard is caught up.
    #[arg(long, overrides_with = "follow")]
    pub no_follow: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Known; waiting for its parents to be read to their end.
    Waiting,
    Reading,
    /// At the tip (only without --follow): nothing more to read now.
    CaughtUp,
    /// Closed and read to its end, or not to be read at all.
    Done,
}

struct ShardNode {
    parents: Vec<String>,
    state: State,
}

/// The shard lineage and which shards may be read now.
struct Lineage {
    shards: BTreeMap<String, ShardNode>,
}

impl Lineage {
    fn add(&mut self, id: &str, parents: Vec<String>, state: State) {
        self.shards
            .entry(id.to_owned())
            .or_insert(ShardNode { parents, state });
    }

    /// Waiting shards whose known parents are all read to their end; a
    /// parent missing from the map has aged out of retention.
    fn ready(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, n)| n.state == State::Waiting)
            .filter(|(_, n)| {
                n.parents.iter().all(|p| {
                    self.shards
                        .get(p)
                        .is_none_or(|parent| parent.state == State::Done)
                })
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn set(&mut self, id: &str, state: State) {
        if let Some(n) = self.shards.get_mut(id) {
            n.state = state;
        }
    }

    fn reading(&self) -> usize {
        self.shards
            .values()
            .filter(|n| n.state == State::Reading)
            .count()
    }
}

fn parse_start(from: Option<&str>, follow: bool) -> Result<Start, CliError> {
    match from.map(str::trim) {
        None if follow => Ok(Start::Latest),
        None => Ok(Start::TrimHorizon),
        Some(s)
            if s.eq_ignore_ascii_case("trim-horizon") || s.eq_ignore_ascii_case("trim_horizon") =>
        {
            Ok(Start::TrimHorizon)
        }
        Some(s) if s.eq_ignore_ascii_case("latest") => Ok(Start::Latest),
        Some(s) => parse_time(s)
            .map(Start::AtTimestamp)
            .map_err(|e| CliError::Usage(format!("--from: {e}; or trim-horizon, latest"))),
    }
}

/// How records are printed.
struct Printer {
    output: Output,
    raw: bool,
    color: bool,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Printer {
    fn record(&mut self, shard_id: &str, r: &Record) -> Result<(), CliError> {
        let mut line: Vec<u8> = if self.raw {
            r.data.to_vec()
        } else if self.output == Output::Json {
            let text = std::str::from_utf8(&r.data).ok();
            let mut v = json!({
                "ShardId": shard_id,
                "SequenceNumber": r.sequence_number,
                "PartitionKey": r.partition_key,
                "ApproximateArrivalTimestamp": r.approximate_arrival_timestamp.map(rfc3339),
                "Data": STANDARD.encode(&r.data),
                "Text": text,
            });
            let looks_json = matches!(
                text.map(str::trim_start).and_then(|t| t.chars().next()),
                Some('{' | '[')
            );
            if looks_json {
                if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(&r.data) {
                    v["Json"] = parsed;
                }
            }
            v.to_string().into_bytes()
        } else {
            let time = r
                .approximate_arrival_timestamp
                .map(rfc3339)
                .unwrap_or_else(|| "-".to_owned());
            let meta = format!(
                "{time} {shard_id} seq={} key={}",
                r.sequence_number, r.partition_key
            );
            let payload = payload_line(&r.data);
            if self.color {
                format!("\x1b[2m{meta}\x1b[0m  {payload}").into_bytes()
            } else {
                format!("{meta}  {payload}").into_bytes()
            }
        };
        line.push(b'\n');
        emit(&mut self.out, &line)
    }

    fn flush(&mut self) -> Result<(), CliError> {
        match self.out.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            other => other.map_err(CliError::Output),
        }
    }
}

pub async fn run(ctx: &Ctx, args: TailArgs) -> Result<(), CliError> {
    let follow = !args.no_follow;
    let start = parse_start(args.from.as_deref(), follow)?;
    if args.max == Some(0) {
        return Ok(());
    }
    let shards = ctx
        .client
        .list_all_shards(&args.stream)
        .await
        .map_err(ctx.err(format!("list the shards of {}", args.stream)))?;
    let mut lineage = Lineage {
        shards: BTreeMap::new(),
    };
    let key_hash = args.key.as_deref().map(hash_key);
    for s in &shards {
        let parents: Vec<String> = [&s.parent_shard_id, &s.adjacent_parent_shard_id]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        let closed = s.sequence_number_range.ending_sequence_number.is_some();
        // LATEST on a closed shard can never yield a record; a shard whose
        // range misses --key's hash cannot hold that key.
        let state = if (start == Start::Latest && closed) || !covers(key_hash, &s.hash_key_range) {
            State::Done
        } else {
            State::Waiting
        };
        lineage.add(&s.shard_id, parents, state);
    }
    let mut printer = Printer {
        output: args.connection.output,
        raw: args.raw,
        color: args.connection.output == Output::Text
            && !args.raw
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none(),
        out: std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
    };
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    let mut printed = 0u64;
    // Shards the initial listing knew start at `start`; children found later
    // hold only records newer than their parents, so they start at their
    // beginning (or at the requested time).
    let child_start = match start {
        Start::Latest => Start::TrimHorizon,
        other => other,
    };
    let mut first_round = true;
    loop {
        for id in lineage.ready() {
            lineage.set(&id, State::Reading);
            let s = if first_round { start } else { child_start };
            tokio::spawn(read_shard(
                ctx.client.clone(),
                ctx.endpoint.clone(),
                args.stream.clone(),
                id,
                s,
                follow,
                tx.clone(),
            ));
        }
        first_round = false;
        if lineage.reading() == 0 {
            printer.flush()?;
            return Ok(());
        }
        let Some(event) = rx.recv().await else {
            printer.flush()?;
            return Ok(());
        };
        match event {
            Event::Records { shard_id, records } => {
                for r in &records {
                    if args.key.as_ref().is_some_and(|k| *k != r.partition_key) {
                        continue;
                    }
                    printer.record(&shard_id, r)?;
                    printed += 1;
                    if args.max.is_some_and(|max| printed >= max) {
                        return printer.flush();
                    }
                }
                printer.flush()?;
            }
            Event::CaughtUp { shard_id } => lineage.set(&shard_id, State::CaughtUp),
            Event::Finished { shard_id, children } => {
                lineage.set(&shard_id, State::Done);
                let children = if children.is_empty() {
                    discover_children(ctx, &args.stream, &shard_id).await?
                } else {
                    children
                };
                for c in children {
                    let state = if covers(key_hash, &c.hash_key_range) {
                        State::Waiting
                    } else {
                        State::Done
                    };
                    lineage.add(&c.shard_id, c.parent_shards, state);
                }
            }
            Event::Failed { error } => {
                printer.flush()?;
                return Err(error);
            }
        }
    }
}

/// The hash key Kinesis routes `partition_key` by: MD5 as a 128-bit integer.
fn hash_key(partition_key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Whether a shard may hold records of the key hashing to `hash` (always,
/// without --key or when the range is unreadable).
fn covers(hash: Option<u128>, range: &HashKeyRange) -> bool {
    let (Some(h), Ok(lo), Ok(hi)) = (
        hash,
        range.starting_hash_key.parse::<u128>(),
        range.ending_hash_key.parse::<u128>(),
    ) else {
        return true;
    };
    (lo..=hi).contains(&h)
}

/// Children of a finished shard for servers that send no ChildShards.
async fn discover_children(
    ctx: &Ctx,
    stream: &str,
    parent: &str,
) -> Result<Vec<ChildShard>, CliError> {
    let shards = ctx
        .client
        .list_all_shards(stream)
        .await
        .map_err(ctx.err(format!("list the shards of {stream}")))?;
    Ok(shards
        .into_iter()
        .filter(|s| {
            s.parent_shard_id.as_deref() == Some(parent)
                || s.adjacent_parent_shard_id.as_deref() == Some(parent)
        })
        .map(|s| ChildShard {
            parent_shards: [s.parent_shard_id, s.adjacent_parent_shard_id]
                .into_iter()
                .flatten()
                .collect(),
            shard_id: s.shard_id,
            hash_key_range: s.hash_key_range,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lineage(entries: &[(&str, &[&str], State)]) -> Lineage {
        let mut l = Lineage {
            shards: BTreeMap::new(),
        };
        for (id, parents, state) in entries {
            l.add(id, parents.iter().map(|p| p.to_string()).collect(), *state);
        }
        l
    }

    #[test]
    fn merge_child_waits_for_both_parents() {
        let mut l = lineage(&[
            ("a", &[], State::Waiting),
            ("b", &[], State::Waiting),
            ("c", &["a", "b"], State::Waiting),
        ]);
        assert_eq!(l.ready(), vec!["a", "b"]);
        l.set("a", State::Done);
        l.set("b", State::Reading);
        assert!(l.ready().is_empty());
        l.set("b", State::Done);
        assert_eq!(l.ready(), vec!["c"]);
    }

    #[test]
    fn expired_parents_do_not_block() {
        let l = lineage(&[("child", &["gone"], State::Waiting)]);
        assert_eq!(l.ready(), vec!["child"]);
    }

    #[test]
    fn key_hash_routes_like_kinesis() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(hash_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
        let low = HashKeyRange {
            starting_hash_key: "0".into(),
            ending_hash_key: (u128::MAX / 2).to_string(),
        };
        assert!(covers(Some(hash_key("a")), &low));
        assert!(!covers(Some(u128::MAX), &low));
        assert!(covers(None, &low));
    }

    #[test]
    fn start_positions() {
        assert_eq!(parse_start(None, true).unwrap(), Start::Latest);
        assert_eq!(parse_start(None, false).unwrap(), Start::TrimHorizon);
        assert_eq!(
            parse_start(Some("1714564800"), true).unwrap(),
            Start::AtTimestamp(1_714_564_800.0)
        );
        assert!(parse_start(Some("soon"), true).is_err());
    }
}
