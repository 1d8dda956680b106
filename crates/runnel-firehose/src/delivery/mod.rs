//! The delivery task of one delivery stream, run by the supervisor.
//!
//! Read the source from the persisted position → buffer by size and time →
//! compress → write the object → persist the new position. Exactly once
//! into object storage: an object's key is fixed by its records (their
//! first and last source positions name the uuid part), and before an
//! object is written its key and end position are persisted as *pending*.
//! A crash at any point resumes from the last committed position; a
//! pending object is rebuilt from exactly its records and written under
//! exactly its key, replacing a copy that may already be in place. Nothing
//! accepted is lost: the records stay in the log until their object is in
//! place (and within the stream's 24-hour retention).

mod buffer;
pub(crate) mod keys;
pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use runnel_catalog::{Catalog, CatalogError};
use runnel_runtime::{Checkpoint, ReaderError, StartingPosition, StreamReader, TaskContext};
use runnel_streams::StreamsService;

use crate::model::CompressionFormat;
use crate::record::{self, DeliveryState, PendingObject};
use buffer::Buffer;
use sink::{ObjectSink, SinkError};

/// Records asked for per read.
const READ_RECORDS_MAX: usize = 500;
/// Wait between reads that found nothing new.
const IDLE_POLL_MS: u64 = 200;

/// What the delivery tasks share.
pub(crate) struct Env {
    pub streams: Arc<StreamsService>,
    pub catalog: Arc<dyn Catalog>,
    pub sink: Arc<dyn ObjectSink>,
}

/// One delivery stream's configuration, as its task runs it. A change
/// (UpdateDestination) restarts the task with a new plan.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub name: String,
    pub version: u64,
    /// Distinguishes incarnations of the same name in object names.
    pub identity: String,
    pub source: String,
    pub start: StartingPosition,
    pub bucket: String,
    pub prefix: Option<String>,
    pub size_bytes: usize,
    pub interval_ms: u64,
    pub compression: CompressionFormat,
    pub extension: String,
    /// The source is readable from then on (a new internal stream is
    /// CREATING until then).
    pub not_before_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    #[error("reading the source failed: {0}")]
    Read(#[from] ReaderError),
    #[error("saving the delivery position failed: {0}")]
    Catalog(#[from] CatalogError),
    #[error("writing to the destination failed: {0}")]
    Sink(#[from] SinkError),
    #[error("compressing an object failed: {0}")]
    Compress(std::io::Error),
    #[error("a blocking delivery step did not finish: {0}")]
    Join(String),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DeliveryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DeliveryError::Join(e.to_string()))
}

/// One attempt of the task: runs until cancelled or an error (the
/// supervisor restarts it from the persisted position).
pub(crate) async fn run(
    ctx: TaskContext,
    env: Arc<Env>,
    plan: Arc<Plan>,
) -> Result<(), DeliveryError> {
    let wait = plan.not_before_ms.saturating_sub(env.streams.now_ms());
    if wait > 0 {
        tokio::select! {
            _ = ctx.cancelled() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
    }
    let (catalog, name) = (env.catalog.clone(), plan.name.clone());
    let state = blocking(move || record::load_state(catalog.as_ref(), &name)).await??;
    let mut committed = state.checkpoint.clone();
    let mut pending = state.pending;
    let mut reader = Some(StreamReader::new(
        env.streams.clone(),
        &plan.source,
        plan.start,
        Some(state.checkpoint),
    ));
    let mut replay = Buffer::default();
    let mut buf = Buffer::default();
    ctx.ready();
    loop {
        if ctx.is_cancelled() {
            return Ok(());
        }
        let Some(mut r) = reader.take() else {
            return Err(DeliveryError::Join("the reader was lost".into()));
        };
        let (r, batch) = blocking(move || {
            let batch = runnel_streams::internal::as_internal(|| r.read(READ_RECORDS_MAX));
            (r, batch)
        })
        .await?;
        let batch = batch?;
        let now = env.streams.now_ms();
        for rec in &batch.records {
            match &pending {
                Some(p) if buffer::covered(&p.end, rec) => replay.push(rec, now),
                _ => buf.push(rec, now),
            }
        }
        if let Some(p) = &pending {
            if buffer::reached(r.checkpoint(), &p.end) {
                let p = p.clone();
                write(&env, &plan, &replay, &committed, &p).await?;
                tracing::info!(delivery_stream = %plan.name, key = %p.key, records = replay.records(), "pending object rewritten after restart");
                committed = p.end;
                pending = None;
                replay = Buffer::default();
            }
        }
        if pending.is_none() && buf.due(plan.size_bytes, plan.interval_ms, now) {
            let (first, last) = buf.range();
            let uuid = keys::buffer_uuid(&plan.identity, first, last);
            let key = keys::object_key(&keys::KeyParts {
                prefix: plan.prefix.as_deref(),
                stream_name: &plan.name,
                version: plan.version,
                first_arrival_ms: buf.first_arrival_ms(),
                uuid: &uuid,
                extension: &plan.extension,
            });
            let p = PendingObject {
                end: r.checkpoint().clone(),
                key,
            };
            write(&env, &plan, &buf, &committed, &p).await?;
            tracing::debug!(delivery_stream = %plan.name, key = %p.key, records = buf.records(), bytes = buf.bytes(), "object delivered");
            committed = p.end;
            buf = Buffer::default();
        }
        reader = Some(r);
        if batch.records.is_empty() || batch.throttled {
            let wait = buf
                .remaining_ms(plan.interval_ms, now)
                .map_or(IDLE_POLL_MS, |left| left.clamp(1, IDLE_POLL_MS));
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
            }
        }
    }
}

/// Persists the intent, writes the object, persists the new position.
async fn write(
    env: &Arc<Env>,
    plan: &Arc<Plan>,
    buf: &Buffer,
    committed: &Checkpoint,
    p: &PendingObject,
) -> Result<(), DeliveryError> {
    let body = buf
        .body(plan.compression)
        .map_err(DeliveryError::Compress)?;
    let (env, plan, committed, p) = (env.clone(), plan.clone(), committed.clone(), p.clone());
    blocking(move || -> Result<(), DeliveryError> {
        let catalog = env.catalog.as_ref();
        let intent = DeliveryState {
            checkpoint: committed,
            pending: Some(p.clone()),
        };
        record::save_state(catalog, &plan.name, &intent)?;
        env.sink.put_object(&plan.bucket, &p.key, &body)?;
        let done = DeliveryState {
            checkpoint: p.end,
            pending: None,
        };
        record::save_state(catalog, &plan.name, &done)?;
        Ok(())
    })
    .await?
}
