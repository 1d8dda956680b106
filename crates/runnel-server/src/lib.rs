//! runnel's front door and wiring.
//!
//! - [`config`]: `runnel.toml` + `RUNNEL_*` env + flags, validated at start.
//! - [`conn`]: one connection's deadlines and the per-address cap.
//! - [`http`]: HTTP/1.1 and h2c on one port, bounded body reads, routing.
//! - [`kinesis`]: `Kinesis_20131202.*` operations → [`runnel_streams`].
//! - [`firehose`]: `Firehose_20150804.*` operations → `runnel_firehose`.
//! - [`errors`]: the one exhaustive mapping of service errors to AWS error
//!   types and HTTP statuses.

pub mod alarms;
pub mod audit;
pub mod auth;
pub mod body;
pub mod cloudwatch;
pub mod config;
pub mod conn;
pub mod console;
pub mod errors;
pub mod firehose;
pub mod frontdoor;
pub mod health;
pub mod http;
pub mod kinesis;
pub mod kms;
pub mod server;
pub mod startup;
pub mod subscribe;
pub mod tls;

pub use config::{Durability, ServerConfig};
pub use server::Server;
