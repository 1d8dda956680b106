//! `runnel stream create|list|describe|delete|scale`.

use clap::{Args, Subcommand};
use runnel_client::{
    CreateStreamInput, DeleteStreamInput, Shard, StreamDescriptionSummary, StreamModeDetails,
    StreamRetentionPeriodInput, UpdateShardCountInput, SCALING_TYPE_UNIFORM,
};
use serde_json::{json, Value};

use crate::format::{percent, range_percent, rfc3339, table};
use crate::{print_json, print_text, wait, CliError, Connection, Ctx, Output};

/// Kinesis keeps data at least this long; retention below is refused.
const RETENTION_HOURS_DEFAULT: u32 = 24;

#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: StreamCommand,
}

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream (provisioned with N shards, or on-demand).
    Create {
        name: String,
        /// Provisioned shard count [default: 1 unless --on-demand]
        #[arg(long, conflicts_with = "on_demand")]
        shards: Option<u32>,
        /// On-demand capacity mode (shards scale with traffic).
        #[arg(long)]
        on_demand: bool,
        /// Retention period in hours (24–8760); set once the stream is ACTIVE.
        #[arg(long)]
        retention_hours: Option<u32>,
        /// Wait until the stream is ACTIVE.
        #[arg(long)]
        wait: bool,
    },
    /// List streams with their status and capacity mode.
    List,
    /// Show a stream and its shard map.
    Describe { name: String },
    /// Delete a stream and all its records.
    Delete {
        name: String,
        /// Also delete its registered enhanced fan-out consumers.
        #[arg(long)]
        force: bool,
        /// Wait until the stream is gone.
        #[arg(long)]
        wait: bool,
    },
    /// Change the number of open shards (UpdateShardCount, UNIFORM_SCALING).
    Scale {
        name: String,
        /// Target open shard count.
        #[arg(long)]
        shards: u32,
        /// Wait until the stream is ACTIVE again.
        #[arg(long)]
        wait: bool,
    },
}

pub async fn run(ctx: &Ctx, command: StreamCommand) -> Result<(), CliError> {
    match command {
        StreamCommand::Create {
            name,
            shards,
            on_demand,
            retention_hours,
            wait,
        } => create(ctx, &name, shards, on_demand, retention_hours, wait).await,
        StreamCommand::List => list(ctx).await,
        StreamCommand::Describe { name } => describe(ctx, &name).await,
        StreamCommand::Delete { name, force, wait } => delete(ctx, &name, force, wait).await,
        StreamCommand::Scale { name, shards, wait } => scale(ctx, &name, shards, wait).await,
    }
}

async fn create(
    ctx: &Ctx,
    name: &str,
    shards: Option<u32>,
    on_demand: bool,
    retention_hours: Option<u32>,
    wait: bool,
) -> Result<(), CliError> {
    let input = CreateStreamInput {
        stream_name: name.to_owned(),
        shard_count: if on_demand {
            None
        } else {
            Some(shards.unwrap_or(1))
        },
        stream_mode_details: Some(StreamModeDetails {
            stream_mode: if on_demand {
                "ON_DEMAND"
            } else {
                "PROVISIONED"
            }
            .to_owned(),
        }),
    };
    ctx.client
        .create_stream(&input)
        .await
        .map_err(ctx.err(format!("create stream {name}")))?;
    if let Some(hours) = retention_hours.filter(|h| *h != RETENTION_HOURS_DEFAULT) {
        // Retention can only change once the stream is ACTIVE.
        wait::active(ctx, name).await?;
        let input = StreamRetentionPeriodInput {
            stream_name: name.to_owned(),
            retention_period_hours: hours,
        };
        let action = format!("set the retention of {name} to {hours} h");
        if hours > RETENTION_HOURS_DEFAULT {
            ctx.client.increase_stream_retention_period(&input).await
        } else {
            ctx.client.decrease_stream_retention_period(&input).await
        }
        .map_err(ctx.err(action))?;
    }
    let summary = if wait {
        wait::active(ctx, name).await?
    } else {
        wait::summary(ctx, name).await?
    };
    match ctx.output {
        Output::Json => print_json(&json!({ "StreamDescriptionSummary": summary })),
        Output::Text => {
            let capacity = if on_demand {
                "on-demand".to_owned()
            } else {
                let n = shards.unwrap_or(1);
                format!("{n} shard{}", if n == 1 { "" } else { "s" })
            };
            print_text(&format!(
                "created stream {name} ({capacity}, retention {} h): {}",
                summary
                    .retention_period_hours
                    .unwrap_or(RETENTION_HOURS_DEFAULT),
                summary.stream_status
            ))
        }
    }
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let out = ctx
        .client
        .list_all_streams()
        .await
        .map_err(ctx.err("list streams"))?;
    match ctx.output {
        Output::Json => print_json(&json!({
            "StreamNames": out.stream_names,
            "StreamSummaries": out.stream_summaries,
        })),
        Output::Text if out.stream_names.is_empty() => {
            print_text("no streams; create one with `runnel stream create NAME --shards N`")
        }
        Output::Text if out.stream_summaries.len() == out.stream_names.len() => {
            let rows: Vec<Vec<String>> = out
                .stream_summaries
                .iter()
                .map(|s| {
                    vec![
                        s.stream_name.clone(),
                        s.stream_status.clone(),
                        mode_of(s.stream_mode_details.as_ref()),
                        s.stream_creation_timestamp.map(rfc3339).unwrap_or_default(),
                    ]
                })
                .collect();
            print_text(&table(&["NAME", "STATUS", "MODE", "CREATED"], &rows))
        }
        Output::Text => print_text(&out.stream_names.join("\n")),
    }
}

fn mode_of(details: Option<&StreamModeDetails>) -> String {
    details
        .map(|d| d.stream_mode.clone())
        .unwrap_or_else(|| "PROVISIONED".to_owned())
}

fn is_open(shard: &Shard) -> bool {
    shard.sequence_number_range.ending_sequence_number.is_none()
}

async fn describe(ctx: &Ctx, name: &str) -> Result<(), CliError> {
    let summary = wait::summary(ctx, name).await?;
    let shards = ctx
        .client
        .list_all_shards(name)
        .await
        .map_err(ctx.err(format!("list the shards of {name}")))?;
    match ctx.output {
        Output::Json => print_json(&describe_json(&summary, &shards)),
        Output::Text => print_text(&describe_text(&summary, &shards)),
    }
}

fn describe_json(summary: &StreamDescriptionSummary, shards: &[Shard]) -> Value {
    let shards: Vec<Value> = shards
        .iter()
        .map(|s| {
            let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut v {
                map.insert(
                    "State".into(),
                    json!(if is_open(s) { "OPEN" } else { "CLOSED" }),
                );
                let r = &s.hash_key_range;
                if let Some((start, end)) = range_percent(&r.starting_hash_key, &r.ending_hash_key)
                {
                    map.insert(
                        "HashKeyRangePercent".into(),
                        json!({ "Start": start, "End": end }),
                    );
                }
            }
            v
        })
        .collect();
    json!({ "StreamDescriptionSummary": summary, "Shards": shards })
}

fn describe_text(summary: &StreamDescriptionSummary, shards: &[Shard]) -> String {
    let open = shards.iter().filter(|s| is_open(s)).count();
    let mut head = vec![
        ("stream", summary.stream_name.clone()),
        ("status", summary.stream_status.clone()),
        ("mode", mode_of(summary.stream_mode_details.as_ref())),
        (
            "retention",
            summary
                .retention_period_hours
                .map(|h| format!("{h} h"))
                .unwrap_or_default(),
        ),
        ("shards", format!("{open} open, {} total", shards.len())),
    ];
    if let Some(arn) = &summary.stream_arn {
        head.insert(1, ("arn", arn.clone()));
    }
    if let Some(t) = summary.stream_creation_timestamp {
        head.push(("created", rfc3339(t)));
    }
    if let Some(enc) = summary.encryption_type.as_ref().filter(|e| *e != "NONE") {
        head.push(("encryption", enc.clone()));
    }
    let mut text: String = head.iter().map(|(k, v)| format!("{k:<10} {v}\n")).collect();
    let rows: Vec<Vec<String>> = shards
        .iter()
        .map(|s| {
            let r = &s.hash_key_range;
            let range = match range_percent(&r.starting_hash_key, &r.ending_hash_key) {
                Some((a, b)) => format!("{}–{}", percent(a), percent(b)),
                None => format!("{}–{}", r.starting_hash_key, r.ending_hash_key),
            };
            let dash = || "-".to_owned();
            vec![
                s.shard_id.clone(),
                range,
                if is_open(s) { "open" } else { "closed" }.to_owned(),
                s.parent_shard_id.clone().unwrap_or_else(dash),
                s.adjacent_parent_shard_id.clone().unwrap_or_else(dash),
                s.sequence_number_range.starting_sequence_number.clone(),
                s.sequence_number_range
                    .ending_sequence_number
                    .clone()
                    .unwrap_or_else(dash),
            ]
        })
        .collect();
    text.push('\n');
    text.push_str(&table(
        &[
            "SHARD ID",
            "HASH RANGE",
            "STATE",
            "PARENT",
            "ADJACENT PARENT",
            "STARTING SEQUENCE",
            "ENDING SEQUENCE",
        ],
        &rows,
    ));
    text
}

async fn delete(ctx: &Ctx, name: &str, force: bool, wait: bool) -> Result<(), CliError> {
    ctx.client
        .delete_stream(&DeleteStreamInput {
            stream_name: name.to_owned(),
            enforce_consumer_deletion: force.then_some(true),
        })
        .await
        .map_err(ctx.err(format!("delete stream {name}")))?;
    if wait {
        wait::gone(ctx, name).await?;
    }
    let status = if wait { "DELETED" } else { "DELETING" };
    match ctx.output {
        Output::Json => print_json(&json!({ "StreamName": name, "StreamStatus": status })),
        Output::Text if wait => print_text(&format!("deleted stream {name}")),
        Output::Text => print_text(&format!("deleting stream {name}")),
    }
}

async fn scale(ctx: &Ctx, name: &str, shards: u32, wait: bool) -> Result<(), CliError> {
    let out = ctx
        .client
        .update_shard_count(&UpdateShardCountInput {
            stream_name: name.to_owned(),
            target_shard_count: shards,
            scaling_type: SCALING_TYPE_UNIFORM.to_owned(),
        })
        .await
        .map_err(ctx.err(format!("scale stream {name} to {shards} shards")))?;
    let status = if wait {
        wait::active(ctx, name).await?.stream_status
    } else {
        "UPDATING".to_owned()
    };
    match ctx.output {
        Output::Json => print_json(&json!({
            "StreamName": name,
            "CurrentShardCount": out.current_shard_count,
            "TargetShardCount": out.target_shard_count.unwrap_or(shards),
            "StreamStatus": status,
        })),
        Output::Text => {
            let from = out
                .current_shard_count
                .map(|n| format!("from {n} "))
                .unwrap_or_default();
            let verb = if wait { "scaled" } else { "scaling" };
            print_text(&format!(
                "{verb} stream {name} {from}to {shards} shards: {status}"
            ))
        }
    }
}
