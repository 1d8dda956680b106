//! runnel-bench: producer/consumer load against any Kinesis Data Streams
//! endpoint (runnel, kinesalite, kinesis-local, ferrokinesis, AWS).
//!
//! ```text
//! runnel bench --endpoint-url http://127.0.0.1:4567 put --shards 4 --duration 20
//! runnel bench putget --records 1000000 --output json
//! runnel bench e2e --rate 2000 --duration 10 --idle-poll-ms 5
//! runnel bench e2e --rate 1000 --duration 10 --shards 1 --fanout 4
//! ```
//!
//! Every record starts with a 20-byte header (magic `RNB1`, run id, send
//! time in Unix ns) when `--record-bytes` ≥ 20, so `get` can count this
//! run's records in a stream that holds others and `e2e` can time them.
//! MB are 10^6 bytes of record data (no partition keys, no framing).

pub mod e2e;
pub mod fanout;
pub mod get;
pub mod put;
pub mod report;
pub mod stream;

use std::time::Duration;

use anyhow::Context;
use runnel_client::Client;
use serde_json::json;

/// Largest record Kinesis accepts (1 MiB of data).
pub const RECORD_BYTES_MAX: usize = 1024 * 1024;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Kinesis endpoint (http only).
    #[arg(
        long,
        global = true,
        env = "RUNNEL_ENDPOINT_URL",
        default_value = "http://127.0.0.1:4567"
    )]
    pub endpoint_url: String,
    /// Region used for SigV4 signing.
    #[arg(long, global = true, env = "AWS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// `table` for people, `json` (one object with every figure) for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum Mode {
    /// Write load: concurrent PutRecords batches; throughput and latency.
    Put(PutArgs),
    /// Read everything back from TRIM_HORIZON; verify count and order.
    Get(GetArgs),
    /// Put then get in one run, verifying that every accepted record is read.
    Putget(PutGetArgs),
    /// Put→visible latency at a fixed rate.
    E2e(E2eArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct StreamArgs {
    #[arg(long, default_value = "runnel-bench")]
    pub stream: String,
    /// Shard count when the stream has to be created.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Keep a stream this run created (it is deleted by default).
    #[arg(long)]
    pub keep: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Concurrent producer tasks (each holds at most one connection).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Records per PutRecords (1..=500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub batch: u32,
    /// Bytes of data per record.
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Seconds of load (ignored with --records).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Send exactly this many records instead of running for --duration.
    #[arg(long)]
    pub records: Option<u64>,
    /// Retries of a failed record before it is counted as dropped.
    #[arg(long, default_value_t = 20)]
    pub retries: u32,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// Records per GetRecords (1..=10000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub limit: u32,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PutArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    #[arg(long, default_value = "runnel-bench")]
    pub stream: String,
    /// Fail unless exactly this many records are read.
    #[arg(long)]
    pub expect: Option<u64>,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PutGetArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(clap::Args, Debug, Clone)]
pub struct E2eArgs {
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Records per second, all producers together.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    #[arg(long, default_value_t = 100)]
    pub record_bytes: usize,
    /// Producer tasks sharing the rate.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// How often a producer sends the records that have come due (ms).
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Reader pause after an empty GetRecords (ms).
    #[arg(long, default_value_t = 10)]
    pub idle_poll_ms: u64,
    /// Seconds readers may keep catching up after producers stop.
    #[arg(long, default_value_t = 10.0)]
    pub drain: f64,
    /// Enhanced fan-out: register this many consumers, subscribe each to
    /// every shard (SubscribeToShard, LATEST) and measure put→push latency
    /// instead of polling GetRecords. Consumers are deregistered afterwards.
    #[arg(long, default_value_t = 0)]
    pub fanout: usize,
    #[command(flatten)]
    pub read: ReadArgs,
}

fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("--{what} must be a non-negative number of seconds"))
}

fn producer(
    client: &Client,
    stream: &str,
    record_bytes: usize,
    retries: u32,
) -> anyhow::Result<put::Producer> {
    anyhow::ensure!(
        (1..=RECORD_BYTES_MAX).contains(&record_bytes),
        "--record-bytes must be between 1 and {RECORD_BYTES_MAX}, got {record_bytes}"
    );
    Ok(put::Producer {
        client: client.clone(),
        stream: stream.to_owned(),
        record_bytes,
        run_id: rand::random(),
        retries_max: retries,
    })
}

fn put_load(a: &LoadArgs) -> anyhow::Result<put::PutLoad> {
    Ok(put::PutLoad {
        concurrency: a.concurrency.max(1),
        batch: a.batch as usize,
        duration: seconds(a.duration, "duration")?,
        records: a.records,
    })
}

/// One report section: name, JSON value, table rows.
type Section<'a> = (&'a str, serde_json::Value, Vec<(&'static str, String)>);

fn emit(output: Output, header: serde_json::Value, sections: &[Section<'_>]) {
    match output {
        Output::Json => {
            let mut obj = header;
            for (name, value, _) in sections {
                obj[*name] = value.clone();
            }
            println!("{obj}");
        }
        Output::Table => {
            let h = &header;
            println!(
                "runnel bench {} → {} (stream {}, {} shards)",
                h["mode"].as_str().unwrap_or(""),
                h["endpoint"].as_str().unwrap_or(""),
                h["stream"].as_str().unwrap_or(""),
                h["shards"]
            );
            for (name, _, rows) in sections {
                report::print_table(name, rows);
            }
        }
    }
}

/// Runs one benchmark mode; prints its report to stdout.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.endpoint_url, &args.region)?;
    let endpoint = args.endpoint_url.clone();
    let header = |mode: &str, stream: &str, shards: usize| json!({"mode": mode, "endpoint": endpoint, "region": args.region, "stream": stream, "shards": shards});
    match &args.mode {
        Mode::Put(a) => {
            let p = producer(
                &client,
                &a.stream.stream,
                a.load.record_bytes,
                a.load.retries,
            )?;
            let load = put_load(&a.load)?;
            let created = stream::ensure(&client, &a.stream.stream, a.stream.shards).await?;
            let shards = stream::shards(&client, &a.stream.stream).await?.len();
            let result = put::run(&p, &load).await;
            cleanup(&client, &a.stream, created).await;
            let r = result?;
            let sections = [("put", serde_json::to_value(&r)?, r.rows())];
            emit(
                args.output,
                header("put", &a.stream.stream, shards),
                &sections,
            );
        }
        Mode::Get(a) => {
            stream::require(&client, &a.stream).await?;
            let load = get::GetLoad {
                limit: a.read.limit,
                run_id: None,
                expect: a.expect,
            };
            let r = get::run(&client, &a.stream, &load).await?;
            let sections = [("get", serde_json::to_value(&r)?, r.rows())];
            emit(
                args.output,
                header("get", &a.stream, r.shards.len()),
                &sections,
            );
            get::check(&r)?;
        }
        Mode::Putget(a) => {
            let p = producer(
                &client,
                &a.stream.stream,
                a.load.record_bytes,
                a.load.retries,
            )?;
            let load = put_load(&a.load)?;
            let created = stream::ensure(&client, &a.stream.stream, a.stream.shards).await?;
            let result = async {
                let put = put::run(&p, &load).await?;
                // Without a header, records cannot be attributed to this run.
                let run_id = (p.record_bytes >= report::HEADER_BYTES).then_some(p.run_id);
                let expect = run_id.map(|_| put.records);
                let read = get::GetLoad {
                    limit: a.read.limit,
                    run_id,
                    expect,
                };
                let got = get::run(&client, &a.stream.stream, &read).await?;
                anyhow::Ok((put, got))
            }
            .await;
            cleanup(&client, &a.stream, created).await;
            let (put, got) = result?;
            let sections = [
                ("put", serde_json::to_value(&put)?, put.rows()),
                ("get", serde_json::to_value(&got)?, got.rows()),
            ];
            emit(
                args.output,
                header("putget", &a.stream.stream, got.shards.len()),
                &sections,
            );
            get::check(&got)?;
        }
        Mode::E2e(a) => {
            let p = producer(&client, &a.stream.stream, a.record_bytes, 20)?;
            anyhow::ensure!(
                a.record_bytes >= report::HEADER_BYTES,
                "e2e needs --record-bytes >= {} to carry the send timestamp",
                report::HEADER_BYTES
            );
            let load = e2e::E2eLoad {
                rate: a.rate.max(1),
                duration: seconds(a.duration, "duration")?,
                producers: a.concurrency.max(1),
                tick: Duration::from_millis(a.tick_ms.max(1)),
                idle_poll: Duration::from_millis(a.idle_poll_ms),
                limit: a.read.limit,
                drain: seconds(a.drain, "drain")?,
                fanout: a.fanout,
            };
            let created = stream::ensure(&client, &a.stream.stream, a.stream.shards).await?;
            let shards = stream::shards(&client, &a.stream.stream).await?.len();
            let result = e2e::run(&p, &load).await;
            cleanup(&client, &a.stream, created).await;
            let r = result?;
            let sections = [("e2e", serde_json::to_value(&r)?, r.rows())];
            emit(
                args.output,
                header("e2e", &a.stream.stream, shards),
                &sections,
            );
        }
    }
    Ok(())
}

async fn cleanup(client: &Client, s: &StreamArgs, created: bool) {
    if created && !s.keep {
        if let Err(e) = stream::delete(client, &s.stream).await {
            eprintln!("warning: {e:#}");
        }
    }
}
