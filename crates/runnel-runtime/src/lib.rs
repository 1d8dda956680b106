//! What runnel's in-process services (Firehose delivery, Analytics
//! applications, event-source mappings) share:
//!
//! - [`supervisor`]: the one owner of every long-running task: restarts with
//!   backoff, stop, graceful shutdown, and a health view per task.
//! - [`functions`]: the one registry from Lambda function ARNs to the HTTP
//!   URLs that stand in for them, and invocation over HTTP.
//! - [`reader`]: reads a Data Stream in process (no HTTP) from a
//!   checkpoint, following resharding parents-first as KCL does.

pub mod functions;
pub mod reader;
pub mod supervisor;

pub use functions::{FunctionError, FunctionName, FunctionRegistry, RegistryError};
pub use reader::{Checkpoint, ReadBatch, ReadRecord, ReaderError, StartingPosition, StreamReader};

pub use supervisor::{
    RestartPolicy, Supervisor, SupervisorError, TaskContext, TaskHealth, TaskSpec, TaskState,
};
