//! `runnel put`: records from arguments, stdin or a file, batched into
//! PutRecords, with failed records retried (backoff and jitter) ahead of
//! everything read after them, so per-key order survives throttling.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use rand::Rng;
use runnel_client::{PutRecordsInput, PutRecordsRequestEntry};
use serde_json::json;

use crate::format::thousands;
use crate::input::{Format, InputRecord, KeyChoice, Source};
use crate::progress::Progress;
use crate::{print_json, print_text, CliError, Connection, Ctx, Output};

/// PutRecords limits (AWS): records per request and bytes of data plus keys.
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
pub const PUT_RECORDS_BYTES_MAX: usize = 5 * 1024 * 1024;
const BACKOFF_BASE_MS: u64 = 100;
const BACKOFF_CAP_MS: u64 = 5_000;
const ATTEMPTS_DEFAULT: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// Stream to write to.
    pub stream: String,
    /// Records, one per argument; `-` reads stdin (also the default when
    /// stdin is not a terminal).
    #[arg(conflicts_with = "file")]
    pub data: Vec<String>,
    /// Read records from this file.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// How lines become records.
    #[arg(long, value_enum, default_value_t = Format::Lines)]
    pub format: Format,
    /// Use this partition key for every record.
    #[arg(long, short = 'k', conflicts_with = "key_field")]
    pub partition_key: Option<String>,
    /// JSON member (jsonl) or column (csv) holding each record's partition
    /// key [default: a random key per record]
    #[arg(long)]
    pub key_field: Option<String>,
    /// Attempts per record before it counts as failed.
    #[arg(long, default_value_t = ATTEMPTS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

struct Pending {
    record: InputRecord,
    attempts: u32,
}

impl Pending {
    fn size(&self) -> usize {
        self.record.data.len() + self.record.partition_key.len()
    }
}

fn source_for(args: &PutArgs) -> Result<(Source, Option<u64>), CliError> {
    let key = match (&args.partition_key, &args.key_field) {
        (Some(k), _) => KeyChoice::Fixed(k.clone()),
        (None, Some(field)) if args.format == Format::Lines => {
            return Err(CliError::Usage(format!(
                "--key-field {field} needs --format jsonl or csv; \
                 for plain lines use --partition-key"
            )))
        }
        (None, Some(field)) => KeyChoice::Field(field.clone()),
        (None, None) => KeyChoice::Random,
    };
    if let Some(path) = &args.file {
        let what = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| CliError::Input {
            what: what.clone(),
            source,
        })?;
        let size = file.metadata().ok().map(|m| m.len());
        let reader =
            tokio::io::BufReader::with_capacity(256 * 1024, tokio::fs::File::from_std(file));
        return Ok((
            Source::from_reader(what, Box::new(reader), args.format, key),
            size,
        ));
    }
    let stdin_wanted = match args.data.as_slice() {
        [dash] if dash == "-" => true,
        [] if std::io::stdin().is_terminal() => {
            return Err(CliError::Usage(
                "nothing to put: give records as arguments, `-` to read stdin, or --file FILE"
                    .to_owned(),
            ))
        }
        [] => true,
        _ => false,
    };
    if stdin_wanted {
        let reader = tokio::io::BufReader::with_capacity(256 * 1024, tokio::io::stdin());
        return Ok((
            Source::from_reader("stdin", Box::new(reader), args.format, key),
            None,
        ));
    }
    Ok((Source::from_args(args.data.clone(), args.format, key), None))
}

/// Exponential backoff with jitter: half the window fixed, half random.
fn backoff(round: u32) -> Duration {
    let window = BACKOFF_BASE_MS
        .saturating_mul(1u64 << round.min(16))
        .min(BACKOFF_CAP_MS);
    let half = window / 2;
    Duration::from_millis(half + rand::thread_rng().gen_range(0..=half))
}

#[derive(Default)]
struct Totals {
    sent: u64,
    failed: u64,
    retries: u64,
    batches: u64,
    last_error: Option<String>,
    /// Some request has been answered, so the endpoint is right.
    connected: bool,
}

fn retry_worthy(e: &runnel_client::Error, totals: &Totals) -> bool {
    totals.connected || !matches!(e, runnel_client::Error::Connection(_))
}

pub async fn run(ctx: &Ctx, args: PutArgs) -> Result<(), CliError> {
    let (mut source, total_bytes) = source_for(&args)?;
    let show = match args.progress {
        ProgressMode::Always => true,
        ProgressMode::Never => false,
        ProgressMode::Auto => std::io::stderr().is_terminal(),
    };
    let progress = Progress::start(show, total_bytes);
    let counters = std::sync::Arc::clone(&progress.counters);
    let started = Instant::now();
    let mut totals = Totals::default();
    let result = async {
        // Records to resend, in their original order; they go first.
        let mut retry: VecDeque<Pending> = VecDeque::new();
        // A record read that did not fit the previous batch.
        let mut carry: Option<Pending> = None;
        let mut exhausted = false;
        let mut failing_rounds = 0u32;
        loop {
            let mut batch: Vec<Pending> = Vec::new();
            let mut bytes = 0usize;
            let fits = |p: &Pending, n: usize, bytes: usize| {
                n == 0 || (n < PUT_RECORDS_COUNT_MAX && bytes + p.size() <= PUT_RECORDS_BYTES_MAX)
            };
            while let Some(p) = retry.front() {
                if !fits(p, batch.len(), bytes) {
                    break;
                }
                bytes += p.size();
                batch.extend(retry.pop_front());
            }
            while retry.is_empty() {
                let next = match carry.take() {
                    Some(p) => p,
                    None if exhausted => break,
                    None => match source.next().await? {
                        Some(record) => Pending {
                            record,
                            attempts: 0,
                        },
                        None => {
                            exhausted = true;
                            break;
                        }
                    },
                };
                if !fits(&next, batch.len(), bytes) {
                    carry = Some(next);
                    break;
                }
                bytes += next.size();
                batch.push(next);
            }
            counters
                .input_bytes
                .store(source.bytes_read, Ordering::Relaxed);
            if batch.is_empty() {
                return Ok(());
            }
            let retried = send(ctx, &args.stream, batch, args.max_attempts, &mut totals).await?;
            counters.sent.store(totals.sent, Ordering::Relaxed);
            counters.failed.store(totals.failed, Ordering::Relaxed);
            counters
                .retrying
                .store(retried.len() as u64, Ordering::Relaxed);
            if retried.is_empty() {
                failing_rounds = 0;
            } else {
                tokio::time::sleep(backoff(failing_rounds)).await;
                failing_rounds += 1;
                // Resent ahead of anything newer, in original order.
                retry.extend(retried);
            }
        }
    }
    .await;
    progress.finish().await;
    result?;
    summarize(ctx, &args, &totals, started.elapsed())
}

/// Sends one batch (retrying whole-request failures that are worth it);
/// returns the records to resend.
async fn send(
    ctx: &Ctx,
    stream: &str,
    batch: Vec<Pending>,
    max_attempts: u32,
    totals: &mut Totals,
) -> Result<Vec<Pending>, CliError> {
    let input = PutRecordsInput {
        stream_name: stream.to_owned(),
        records: batch
            .iter()
            .map(|p| PutRecordsRequestEntry {
                data: p.record.data.clone(),
                partition_key: p.record.partition_key.clone(),
                explicit_hash_key: None,
            })
            .collect(),
    };
    let mut round = 0u32;
    let out = loop {
        totals.batches += 1;
        match ctx.client.put_records(&input).await {
            Ok(out) if out.records.len() == batch.len() => break out,
            Ok(out) => {
                return Err(CliError::api(
                    format!("put records into {stream}"),
                    &ctx.endpoint,
                    runnel_client::Error::Decode {
                        operation: "PutRecords",
                        reason: format!(
                            "{} results for {} records",
                            out.records.len(),
                            batch.len()
                        ),
                    },
                ))
            }
            // A refused first connection means no server, not a blip: fail fast.
            Err(e) if e.is_retryable() && round + 1 < max_attempts && retry_worthy(&e, totals) => {
                totals.retries += batch.len() as u64;
                totals.last_error = Some(e.to_string());
                tokio::time::sleep(backoff(round)).await;
                round += 1;
            }
            Err(e) => return Err(ctx.err(format!("put records into {stream}"))(e)),
        }
    };
    totals.connected = true;
    let mut again = Vec::new();
    for (mut pending, result) in batch.into_iter().zip(out.records) {
        match result.error_code {
            None => totals.sent += 1,
            Some(code) => {
                pending.attempts += 1;
                let message = result.error_message.unwrap_or_default();
                totals.last_error = Some(format!("{code}: {message}"));
                if pending.attempts >= max_attempts {
                    totals.failed += 1;
                } else {
                    totals.retries += 1;
                    again.push(pending);
                }
            }
        }
    }
    Ok(again)
}

fn summarize(ctx: &Ctx, args: &PutArgs, t: &Totals, elapsed: Duration) -> Result<(), CliError> {
    let secs = elapsed.as_secs_f64();
    let rate = t.sent as f64 / secs.max(1e-3);
    match ctx.output {
        Output::Json => print_json(&json!({
            "StreamName": args.stream,
            "Records": t.sent,
            "Failed": t.failed,
            "Retries": t.retries,
            "Requests": t.batches,
            "ElapsedSeconds": (secs * 1000.0).round() / 1000.0,
            "RecordsPerSecond": rate.round(),
        }))?,
        Output::Text => {
            let mut line = format!(
                "put {} records into {} in {:.2} s ({}/s)",
                thousands(t.sent),
                args.stream,
                secs,
                thousands(rate as u64)
            );
            line.push_str(&format!(", {} failed", thousands(t.failed)));
            if t.retries > 0 {
                line.push_str(&format!(", {} retried", thousands(t.retries)));
            }
            print_text(&line)?;
        }
    }
    if t.failed > 0 {
        return Err(CliError::Incomplete {
            failed: t.failed,
            total: t.sent + t.failed,
            attempts: args.max_attempts,
            last_error: t.last_error.clone().unwrap_or_default(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for round in 0..20 {
            let d = backoff(round).as_millis() as u64;
            let window = (BACKOFF_BASE_MS << round.min(16)).min(BACKOFF_CAP_MS);
            assert!(d >= window / 2 && d <= window, "round {round}: {d} ms");
        }
    }
}
