//! The Firehose service: delivery streams, their records, their tasks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use runnel_catalog::Catalog;
use runnel_runtime::{FunctionRegistry, StartingPosition, Supervisor, TaskSpec};
use runnel_streams::StreamsService;
use serde::Serialize;

use crate::delivery::{self, sink::LocalDirectory, Env, Plan};
use crate::model::CompressionFormat;
use crate::record::{self, DeliveryStreamRecord, Source};
use crate::FirehoseError;

pub(crate) type Result<T> = std::result::Result<T, FirehoseError>;

/// Buffering defaults of the S3 destinations.
pub(crate) const SIZE_IN_MBS_DEFAULT: i32 = 5;
pub(crate) const INTERVAL_IN_SECONDS_DEFAULT: i32 = 300;
const MIB: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct FirehoseConfig {
    pub region: String,
    pub account_id: String,
    /// Bucket `arn:aws:s3:::B` is the directory `<buckets_dir>/B/`.
    pub buckets_dir: PathBuf,
    /// How long a new delivery stream stays CREATING.
    pub transition_ms: u64,
}

pub struct FirehoseService {
    pub(crate) cfg: FirehoseConfig,
    pub(crate) streams: Arc<StreamsService>,
    pub(crate) supervisor: Supervisor,
    /// For record transformation (not in this slice yet).
    #[allow(dead_code)]
    pub(crate) functions: Arc<FunctionRegistry>,
    pub(crate) env: Arc<Env>,
    pub(crate) by_name: RwLock<BTreeMap<String, Arc<DeliveryStreamRecord>>>,
    /// Serialises create, update and delete: each is catalog writes plus
    /// task changes, awaited in between (hence an async mutex).
    pub(crate) control: tokio::sync::Mutex<()>,
}

impl FirehoseService {
    /// Loads the delivery streams from the catalog and starts their tasks.
    /// Call inside a tokio runtime; it reads the catalog (blocking).
    pub fn open(
        cfg: FirehoseConfig,
        streams: Arc<StreamsService>,
        supervisor: Supervisor,
        functions: Arc<FunctionRegistry>,
    ) -> std::result::Result<Arc<FirehoseService>, FirehoseError> {
        let sink = Arc::new(LocalDirectory::new(cfg.buckets_dir.clone()));
        Self::open_with_sink(cfg, streams, supervisor, functions, sink)
    }

    /// As [`FirehoseService::open`], delivering into `sink`.
    pub(crate) fn open_with_sink(
        cfg: FirehoseConfig,
        streams: Arc<StreamsService>,
        supervisor: Supervisor,
        functions: Arc<FunctionRegistry>,
        sink: Arc<dyn crate::delivery::sink::ObjectSink>,
    ) -> std::result::Result<Arc<FirehoseService>, FirehoseError> {
        let catalog: Arc<dyn Catalog> = streams.catalog();
        let records = record::load_definitions(catalog.as_ref())
            .map_err(|e| FirehoseError::Internal(format!("cannot load delivery streams: {e}")))?;
        let env = Arc::new(Env {
            streams: streams.clone(),
            catalog,
            sink,
        });
        let svc = Arc::new(FirehoseService {
            cfg,
            streams,
            supervisor,
            functions,
            env,
            by_name: RwLock::default(),
            control: tokio::sync::Mutex::new(()),
        });
        for rec in records {
            let rec = Arc::new(rec);
            svc.start_task(&rec)?;
            svc.by_name.write().insert(rec.name.clone(), rec);
        }
        Ok(svc)
    }

    /// Serves one `Firehose_20150804.<op>` call; the body is JSON 1.1.
    pub async fn handle(self: &Arc<Self>, op: &str, body: &[u8]) -> Result<Vec<u8>> {
        match op {
            "CreateDeliveryStream" => out(&self.create(parse(body)?).await?),
            "DescribeDeliveryStream" => out(&self.describe(parse(body)?)?),
            "ListDeliveryStreams" => out(&self.list(parse(body)?)),
            "DeleteDeliveryStream" => out(&self.delete(parse(body)?).await?),
            "UpdateDestination" => out(&self.update_destination(parse(body)?).await?),
            "PutRecord" => out(&self.put_record(parse(body)?).await?),
            "PutRecordBatch" => out(&self.put_record_batch(parse(body)?).await?),
            "TagDeliveryStream" => out(&self.tag(parse(body)?).await?),
            "UntagDeliveryStream" => out(&self.untag(parse(body)?).await?),
            "ListTagsForDeliveryStream" => out(&self.list_tags(parse(body)?)?),
            "StartDeliveryStreamEncryption" | "StopDeliveryStreamEncryption" => Err(
                FirehoseError::InvalidArgument(format!("{op} is not supported by runnel yet.")),
            ),
            _ => Err(FirehoseError::UnknownOperation(format!(
                "Unknown operation target Firehose_20150804.{op}."
            ))),
        }
    }

    pub(crate) fn not_found(&self, name: &str) -> FirehoseError {
        FirehoseError::ResourceNotFound(format!(
            "Firehose {name} under account {} not found.",
            self.cfg.account_id
        ))
    }

    pub(crate) fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:firehose:{}:{}:deliverystream/{name}",
            self.cfg.region, self.cfg.account_id
        )
    }

    pub(crate) fn get(&self, name: &str) -> Result<Arc<DeliveryStreamRecord>> {
        self.by_name
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    pub(crate) fn task_name(name: &str) -> String {
        format!("firehose/{name}")
    }

    /// Starts the delivery task of `rec` under the supervisor.
    pub(crate) fn start_task(&self, rec: &DeliveryStreamRecord) -> Result<()> {
        let plan = Arc::new(plan_of(rec, self.cfg.transition_ms)?);
        let env = self.env.clone();
        self.supervisor
            .spawn(
                &Self::task_name(&rec.name),
                TaskSpec::default(),
                move |ctx| delivery::run(ctx, env.clone(), plan.clone()),
            )
            .map_err(|e| FirehoseError::Internal(e.to_string()))
    }
}

/// How the task of `rec` runs.
pub(crate) fn plan_of(rec: &DeliveryStreamRecord, transition_ms: u64) -> Result<Plan> {
    let d = &rec.destination;
    let hints = d.buffering_hints.clone().unwrap_or_default();
    let size_mbs = hints.size_in_mbs.unwrap_or(SIZE_IN_MBS_DEFAULT).max(1) as usize;
    let interval_s = hints
        .interval_in_seconds
        .unwrap_or(INTERVAL_IN_SECONDS_DEFAULT)
        .max(0) as u64;
    let compression = d
        .compression_format
        .unwrap_or(CompressionFormat::Uncompressed);
    let extension = match (&d.file_extension, compression) {
        (Some(e), _) => e.clone(),
        (None, CompressionFormat::Gzip) => ".gz".into(),
        (None, _) => String::new(),
    };
    let (source, start) = match &rec.source {
        Source::Internal { stream } => (stream.clone(), StartingPosition::TrimHorizon),
        Source::Kinesis { stream_arn, .. } => (
            stream_arn.clone(),
            StartingPosition::AtTimestamp { ms: rec.created_ms },
        ),
    };
    Ok(Plan {
        name: rec.name.clone(),
        version: rec.version,
        identity: format!("{}@{}", rec.name, rec.created_ms),
        source,
        start,
        bucket: crate::control::bucket_of(d.bucket_arn.as_deref().unwrap_or(""))?,
        prefix: d.prefix.clone().filter(|p| !p.is_empty()),
        size_bytes: size_mbs * MIB,
        interval_ms: interval_s * 1000,
        compression,
        extension,
        not_before_ms: rec.created_ms.saturating_add(transition_ms),
    })
}

fn parse<T: serde::de::DeserializeOwned + runnel_aws::Validate>(body: &[u8]) -> Result<T> {
    runnel_aws::parse_json(body).map_err(|e| match e {
        runnel_aws::RequestError::Serialization(m) => FirehoseError::Serialization(m),
        runnel_aws::RequestError::Validation(m) => FirehoseError::Validation(m),
    })
}

fn out<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| FirehoseError::Internal(e.to_string()))
}

/// Runs blocking work (catalog fsyncs, internal stream changes) off the
/// runtime threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FirehoseError::Internal(format!("a blocking task failed: {e}")))?
}
