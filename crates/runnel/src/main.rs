//! `runnel serve` runs the server; `runnel bench` load-tests any Kinesis endpoint;
//! `runnel stream|put|tail` operate streams through the public Kinesis API.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use runnel_server::{Durability, Server, ServerConfig};

// glibc malloc serialises threads that free what another thread allocated
// (request buffers are allocated on runtime threads and freed on the log
// writer, and the reverse); perf showed its arena lock among the top futex
// waits on the PutRecord path. mimalloc frees to the owning thread's heap
// without a global lock. docs/benchmarks.md has the measurement.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "runnel",
    version,
    about = "A durable, self-hosted Amazon Kinesis Data Streams server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (Kinesis Data Streams API on one port, embedded storage).
    Serve(ServeArgs),
    /// Load-test a Kinesis endpoint (runnel, AWS, or any emulator).
    Bench(runnel_bench::BenchArgs),
    /// Create, list, describe, delete and scale streams.
    Stream(runnel_cli::StreamArgs),
    /// Write records from arguments, stdin or a file (batched, retried).
    Put(runnel_cli::PutArgs),
    /// Print a stream's records as they arrive, across resharding.
    Tail(runnel_cli::TailArgs),
    /// Manage the principals (access keys, secrets, policies) of `auth = "enforced"`.
    Auth(AuthArgs),
}

#[derive(Args)]
struct AuthArgs {
    /// Principals file [default: ./runnel-data/principals.json]
    #[arg(
        long,
        env = "RUNNEL_PRINCIPALS_FILE",
        default_value = "./runnel-data/principals.json"
    )]
    file: PathBuf,
    #[command(subcommand)]
    command: AuthCommand,
}

#[derive(Subcommand)]
enum AuthCommand {
    /// Create a principal with fresh credentials and print them once.
    Add {
        name: String,
        /// IAM policy JSON files to attach (repeatable). Without any, the principal can do nothing.
        #[arg(long = "policy")]
        policies: Vec<PathBuf>,
    },
    /// List principals (names and access keys; never secrets).
    List,
    /// Remove a principal.
    Remove { name: String },
}

fn auth_command(args: AuthArgs) -> anyhow::Result<()> {
    use runnel_auth::principals::PrincipalsFile;
    let mut file = PrincipalsFile::load(&args.file)?;
    // Secrets are stored encrypted under the server's master key, which lives
    // beside the principals file (its default place is the data dir) unless
    // RUNNEL_MASTER_KEY gives it.
    let dir = args
        .file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let master = runnel_kms::load_master_key(dir).map_err(anyhow::Error::msg)?;
    match args.command {
        AuthCommand::Add { name, policies } => {
            let mut docs = Vec::new();
            for p in policies {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read policy {}", p.display()))?;
                docs.push(
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not JSON", p.display()))?,
                );
            }
            let principal = file.add(&name, docs)?;
            file.encrypt_secrets(&master)?;
            file.save(&args.file)?;
            println!("name:              {}", principal.name);
            println!("access key id:     {}", principal.access_key);
            println!("secret access key: {}", principal.secret);
            println!(
                "(the secret is shown once; it is stored in {} with mode 0600)",
                args.file.display()
            );
        }
        AuthCommand::List => {
            for p in &file.principals {
                println!(
                    "{}\t{}\t{} policies",
                    p.name,
                    p.access_key,
                    p.policies.len()
                );
            }
        }
        AuthCommand::Remove { name } => {
            let before = file.principals.len();
            file.principals.retain(|p| p.name != name);
            anyhow::ensure!(file.principals.len() < before, "no principal named {name}");
            file.encrypt_secrets(&master)?;
            file.save(&args.file)?;
        }
    }
    Ok(())
}

/// Flags and `RUNNEL_*` environment variables override the config file.
#[derive(Args)]
#[command(args_override_self = true)]
struct ServeArgs {
    /// TOML config file (see runnel.toml in the repository for every setting).
    #[arg(long, env = "RUNNEL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:4567]
    #[arg(long, env = "RUNNEL_ADDR")]
    addr: Option<SocketAddr>,
    /// Directory for records and metadata [default: ./runnel-data]
    #[arg(long, env = "RUNNEL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Region used in ARNs [default: us-east-1]
    #[arg(long, env = "RUNNEL_REGION")]
    region: Option<String>,
    /// Account id used in ARNs [default: 000000000000]
    #[arg(long, env = "RUNNEL_ACCOUNT_ID")]
    account_id: Option<String>,
    /// fsync (default: durable before ack) or none
    #[arg(long, env = "RUNNEL_DURABILITY")]
    durability: Option<Durability>,
    /// When the record log is damaged: refuse to start (default) or skip
    /// the damaged bytes, keeping every record that verifies
    #[arg(long, env = "RUNNEL_ON_CORRUPTION")]
    on_corruption: Option<String>,
    /// Start although catalog.redb is missing and the log holds records of
    /// streams no longer known; retention then deletes those records
    #[arg(long)]
    discard_orphaned_log_data: bool,
    /// How long streams stay CREATING/UPDATING/DELETING, in ms [default: 500]
    #[arg(long, env = "RUNNEL_STREAM_TRANSITION_MS")]
    stream_transition_ms: Option<u64>,
    /// Log segment size in bytes [default: 67108864]
    #[arg(long, env = "RUNNEL_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// How often expired data is reclaimed, in ms [default: 60000]
    #[arg(long, env = "RUNNEL_RETENTION_CHECK_MS")]
    retention_check_ms: Option<u64>,
    /// Shard quota of the account [default: 500]
    #[arg(long, env = "RUNNEL_ACCOUNT_SHARDS_MAX")]
    account_shards_max: Option<u32>,
    /// Per-shard throughput quotas: aws (default), off, or a multiplier of AWS's rates
    #[arg(long, env = "RUNNEL_QUOTAS")]
    quotas: Option<String>,
    /// How often on-demand streams are checked for scaling, in ms [default: 60000]
    #[arg(long, env = "RUNNEL_ON_DEMAND_SCALE_CHECK_MS")]
    on_demand_scale_check_ms: Option<u64>,
    /// Enable /_runnel/test/* hooks that move the server clock (tests only)
    #[arg(long, env = "RUNNEL_TEST_CLOCK")]
    test_clock: bool,
    /// open (any credentials; loopback only) or enforced (SigV4 + policies)
    #[arg(long, env = "RUNNEL_AUTH")]
    auth: Option<String>,
    /// Principals file for --auth enforced [default: <data-dir>/principals.json]
    #[arg(long, env = "RUNNEL_PRINCIPALS_FILE")]
    principals_file: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (with --tls-key)
    #[arg(long, env = "RUNNEL_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, env = "RUNNEL_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a development CA + certificate generated under <data-dir>/tls/
    #[arg(long, env = "RUNNEL_TLS_SELF_SIGNED")]
    tls_self_signed: bool,
    /// Log JSON lines instead of text
    #[arg(long, env = "RUNNEL_LOG_JSON")]
    log_json: bool,
    /// A Lambda function and the HTTP(S) URL that stands in for it (repeatable)
    #[arg(long = "function", value_name = "ARN=URL")]
    functions: Vec<String>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<ServerConfig> {
        let mut c = match &self.config {
            Some(path) => ServerConfig::from_file(path)?,
            None => ServerConfig::default(),
        };
        if let Some(v) = self.addr {
            c.addr = v;
        }
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = self.region {
            c.region = v;
        }
        if let Some(v) = self.account_id {
            c.account_id = v;
        }
        if let Some(v) = self.durability {
            c.durability = v;
        }
        if let Some(v) = self.on_corruption {
            c.on_corruption = v;
        }
        if self.discard_orphaned_log_data {
            c.discard_orphaned_log_data = true;
        }
        if let Some(v) = self.stream_transition_ms {
            c.stream_transition_ms = v;
        }
        if let Some(v) = self.segment_bytes {
            c.segment_bytes = v;
        }
        if let Some(v) = self.retention_check_ms {
            c.retention_check_ms = v;
        }
        if let Some(v) = self.account_shards_max {
            c.account_shards_max = v;
        }
        if let Some(v) = self.quotas {
            c.quotas = v;
        }
        if let Some(v) = self.on_demand_scale_check_ms {
            c.on_demand_scale_check_ms = v;
        }
        if let Some(v) = self.auth {
            c.auth = v;
        }
        if let Some(v) = self.principals_file {
            c.principals_file = Some(v);
        }
        if self.tls_cert.is_some() {
            c.tls_cert = self.tls_cert;
        }
        if self.tls_key.is_some() {
            c.tls_key = self.tls_key;
        }
        c.tls_self_signed |= self.tls_self_signed;
        c.test_clock |= self.test_clock;
        c.log_json |= self.log_json;
        for f in &self.functions {
            c.add_function_flag(f)?;
        }
        c.validate()?;
        Ok(c)
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUNNEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Raises the soft limit on open files to the hard limit. Connections each
/// take a descriptor, and so do the log's open segment files (at most
/// `open_segments_max` sealed ones), so the usual soft limit of 1024 is too
/// low for a busy server; the hard limit is what the administrator allows.
fn raise_open_files_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Some((before, before));
            }
        }
        Some((before, lim.rlim_cur))
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            init_logging(config.log_json);
            match raise_open_files_limit() {
                Some((before, after)) if after < 4096 => tracing::warn!(
                    before,
                    after,
                    "the open files limit is low; raise it (ulimit -n) for many connections"
                ),
                Some((before, after)) => tracing::debug!(before, after, "open files limit"),
                None => {}
            }
            runtime.block_on(async {
                let server = Server::start(config.clone()).await?;
                let addr = server.local_addr()?;
                tracing::info!(%addr, data_dir = %config.data_dir.display(), durability = ?config.durability, "runnel listening");
                server.run(shutdown_signal()).await
            })
        }
        Command::Bench(args) => runtime.block_on(runnel_bench::run(args)),
        Command::Stream(args) => {
            runnel_cli::exit_on_error(runtime.block_on(runnel_cli::stream(args)));
            Ok(())
        }
        Command::Put(args) => {
            runnel_cli::exit_on_error(runtime.block_on(runnel_cli::put(args)));
            Ok(())
        }
        Command::Tail(args) => {
            runnel_cli::exit_on_error(runtime.block_on(runnel_cli::tail(args)));
            Ok(())
        }
        Command::Auth(args) => auth_command(args),
    }
}
