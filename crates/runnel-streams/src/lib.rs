//! The Kinesis Data Streams service: stream lifecycle, hash-key routing,
//! sequence numbers, shard iterators, retention, tags.
//!
//! It speaks typed requests and responses ([`api`]) and [`StreamsError`];
//! it never sees HTTP. Storage is [`runnel_log::Log`] (records) and a
//! [`runnel_catalog::Catalog`] (metadata).
//!
//! Control-plane methods are synchronous and may block on the catalog's
//! fsync: callers run them on a blocking thread. `put_record(s)` is async
//! (it awaits the log's group commit); reads are synchronous page-cache reads.

pub mod api;
mod capacity;
mod consumers;
mod control;
mod data;
pub mod encryption;
pub mod error;
pub mod fanout;
pub mod internal;
mod listing;
pub mod metrics;
pub mod quota;
mod reshard;
mod resource_policy;
mod service;
mod subscribe;
mod tags;
mod timefmt;
pub mod token;
pub mod validate;

pub use error::StreamsError;
pub use service::{ResourceRef, StreamsConfig, StreamsService};
pub use subscribe::Subscription;
