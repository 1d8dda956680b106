//! What runnel's in-process services (Firehose delivery, Analytics
//! applications, event-source mappings) share:
//!
//! - [`supervisor`]: the one owner of every long-running task: restarts with
//!   backoff, stop, graceful shutdown, and a health view per task.
//! - [`functions`]: the one registry from Lambda function ARNs to the HTTP
//!   URLs that stand in for them, and invocation over HTTP.
//! - [`reader`]: reads a Data Stream in process (no HTTP) from a
//!   checkpoint, following resharding parents-first as KCL does.
//!
//! How a delivery stream would use the three together:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use bytes::Bytes;
//! use runnel_runtime::{
//!     FunctionRegistry, StartingPosition, StreamReader, Supervisor, TaskSpec, TaskState,
//! };
//!
//! # async fn example(
//! #     streams: Arc<runnel_streams::StreamsService>,
//! #     functions: Arc<FunctionRegistry>,
//! #     supervisor: Supervisor,
//! # ) {
//! supervisor
//!     .spawn("firehose/orders-to-s3", TaskSpec::default(), move |ctx| {
//!         let (streams, functions) = (streams.clone(), functions.clone());
//!         async move {
//!             // A real task loads its persisted checkpoint here.
//!             let mut reader =
//!                 StreamReader::new(streams, "orders", StartingPosition::TrimHorizon, None);
//!             while !ctx.is_cancelled() {
//!                 let batch = reader.read(500).map_err(|e| e.to_string())?;
//!                 if batch.records.is_empty() {
//!                     tokio::time::sleep(Duration::from_millis(200)).await;
//!                     continue;
//!                 }
//!                 let event = Bytes::from_static(b"{\"records\":[]}");
//!                 let _transformed = functions
//!                     .invoke("enrich", event, Duration::from_secs(60))
//!                     .await
//!                     .map_err(|e| e.to_string())?;
//!                 // Deliver, then persist reader.checkpoint().
//!             }
//!             Ok::<(), String>(())
//!         }
//!     })
//!     .expect("a new name");
//! let health = supervisor.health("firehose/orders-to-s3").expect("registered");
//! let active = matches!(health.state, TaskState::Running);
//! # let _ = active;
//! # }
//! ```

pub mod functions;
pub mod reader;
pub mod supervisor;

pub use functions::{FunctionError, FunctionName, FunctionRegistry, RegistryError};
pub use reader::{Checkpoint, ReadBatch, ReadRecord, ReaderError, StartingPosition, StreamReader};

pub use supervisor::{
    RestartPolicy, Supervisor, SupervisorError, TaskContext, TaskHealth, TaskSpec, TaskState,
};
