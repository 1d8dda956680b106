//! runnel-cli: the operator commands of the `runnel` binary — `stream`
//! (create/list/describe/delete/scale), `put` and `tail`.
//!
//! They speak only the public Kinesis Data Streams API through
//! `runnel-client`, so every command works against AWS or any emulator as
//! well as against `runnel serve`. Human-readable output is the default;
//! `--output json` prints machine-readable JSON on stdout. Progress and
//! diagnostics go to stderr.

mod error;
mod format;
mod input;
mod progress;
mod put;
mod reader;
mod stream;
mod tail;
mod wait;

use std::io::Write;

use clap::{Args, ValueEnum};

pub use error::CliError;
pub use put::PutArgs;
pub use stream::{StreamArgs, StreamCommand};
pub use tail::TailArgs;

pub const ENDPOINT_URL_DEFAULT: &str = "http://127.0.0.1:4567";
pub const REGION_DEFAULT: &str = "us-east-1";

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and sentences for people.
    Text,
    /// JSON for scripts (`tail` prints one JSON object per line).
    Json,
}

/// Where to connect and how to print; shared by every client subcommand.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Kinesis endpoint (runnel, AWS, or an emulator); http:// only.
    #[arg(long, global = true, env = "RUNNEL_ENDPOINT_URL", default_value = ENDPOINT_URL_DEFAULT)]
    pub endpoint_url: String,
    /// AWS region used for request signing [env: AWS_REGION, AWS_DEFAULT_REGION; default: us-east-1]
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Output format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

impl Connection {
    fn region(&self) -> String {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        self.region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| REGION_DEFAULT.to_owned())
    }

    /// A client for this endpoint; credentials come from the AWS env vars.
    fn client(&self) -> Result<Ctx, CliError> {
        let client = runnel_client::Client::new(&self.endpoint_url, &self.region())
            .map_err(|e| CliError::api("connect", &self.endpoint_url, e))?;
        Ok(Ctx {
            client,
            endpoint: self.endpoint_url.clone(),
            output: self.output,
        })
    }
}

/// What a running command needs: the client, for messages the endpoint as
/// the user wrote it, and the output format.
pub(crate) struct Ctx {
    pub client: runnel_client::Client,
    pub endpoint: String,
    pub output: Output,
}

impl Ctx {
    /// Wraps a client error with what we were doing.
    pub fn err(&self, action: impl Into<String>) -> impl FnOnce(runnel_client::Error) -> CliError {
        let endpoint = self.endpoint.clone();
        let action = action.into();
        move |e| CliError::api(action, &endpoint, e)
    }
}

/// `runnel stream …`
pub async fn stream(args: StreamArgs) -> Result<(), CliError> {
    let ctx = args.connection.client()?;
    stream::run(&ctx, args.command).await
}

/// `runnel put …`
pub async fn put(args: PutArgs) -> Result<(), CliError> {
    let ctx = args.connection.client()?;
    put::run(&ctx, args).await
}

/// `runnel tail …`
pub async fn tail(args: TailArgs) -> Result<(), CliError> {
    let ctx = args.connection.client()?;
    tail::run(&ctx, args).await
}

/// Prints a failed command's message on stderr and exits with its code;
/// a successful result passes through.
pub fn exit_on_error(result: Result<(), CliError>) {
    if let Err(e) = result {
        let _ = std::io::stdout().flush();
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

/// Writes to stdout; a closed pipe (`runnel tail | head`) ends the process
/// quietly with success, as `cat` does.
pub(crate) fn emit(out: &mut impl Write, text: &[u8]) -> Result<(), CliError> {
    match out.write_all(text) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(CliError::Output(e)),
    }
}

/// Prints `value` as pretty JSON plus a newline.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let mut text =
        serde_json::to_vec_pretty(value).map_err(|e| CliError::Output(std::io::Error::other(e)))?;
    text.push(b'\n');
    let mut out = std::io::stdout().lock();
    emit(&mut out, &text)?;
    out.flush().map_err(CliError::Output)
}

/// Prints `text` plus a newline.
pub(crate) fn print_text(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    emit(&mut out, text.as_bytes())?;
    emit(&mut out, b"\n")?;
    out.flush().map_err(CliError::Output)
}
