//! Stand-alone `runnel-bench`, the same as `runnel bench`, for running the
//! benchmark without the server binary.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "runnel-bench",
    about = "Load-test any Kinesis Data Streams endpoint"
)]
struct Cli {
    #[command(flatten)]
    bench: runnel_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    runnel_bench::run(Cli::parse().bench).await
}
