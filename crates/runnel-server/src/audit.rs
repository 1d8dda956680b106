//! The audit trail (CloudTrail's role): one JSON line per API call, in
//! CloudTrail's record format, appended to `<data_dir>/audit/audit.log`
//! (rotated by size). Management events are always recorded; data events
//! (PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard) when
//! `audit_data_events = true`. Request parameters are recorded without data
//! blobs (`Data`, `Plaintext`, `CiphertextBlob`), and no secret ever reaches
//! the trail. A dedicated thread writes; requests never wait for it (if its
//! queue is full the event is counted as dropped and a warning is logged).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

use parking_lot::Mutex;
use serde_json::{json, Value};

const QUEUE_EVENTS_MAX: usize = 16_384;
const DATA_EVENTS: [&str; 5] = [
    "PutRecord",
    "PutRecords",
    "GetRecords",
    "GetShardIterator",
    "SubscribeToShard",
];
const BLOB_FIELDS: [&str; 3] = ["Data", "Plaintext", "CiphertextBlob"];

pub struct AuditLog {
    tx: SyncSender<String>,
    dropped: AtomicU64,
    data_events: bool,
}

/// What the front door learns about one call while serving it.
#[derive(Default)]
pub struct AuditCtx {
    facts: Mutex<Facts>,
}

#[derive(Default, Clone)]
struct Facts {
    source: &'static str,
    operation: Option<String>,
    params: Option<Value>,
    access_key: Option<String>,
    principal: Option<(String, String)>, // (name, arn)
}

/// Attached to error responses so the trail records the code and message.
#[derive(Clone, Debug)]
pub struct ErrorNote {
    pub error_type: String,
    pub message: String,
}

impl AuditCtx {
    pub fn request(&self, source: &'static str, operation: &str, body_json: Option<&Value>) {
        let mut f = self.facts.lock();
        f.source = source;
        f.operation = Some(operation.to_string());
        f.params = body_json.map(strip_blobs);
    }

    pub fn access_key(&self, key: &str) {
        self.facts.lock().access_key = Some(key.to_string());
    }

    pub fn principal(&self, name: &str, arn: &str) {
        self.facts.lock().principal = Some((name.to_string(), arn.to_string()));
    }
}

fn strip_blobs(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !BLOB_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_blobs(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_blobs).collect()),
        other => other.clone(),
    }
}

fn iso(ms: u64) -> String {
    let (y, mo, d, h, m, s) = runnel_types::civil::utc(ms / 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

fn uuid() -> String {
    let a: u128 = rand::random();
    let h = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

struct Rotating {
    path: PathBuf,
    file: std::fs::File,
    bytes: u64,
    bytes_max: u64,
    keep: usize,
}

impl Rotating {
    fn open(path: &Path, bytes_max: u64, keep: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let bytes = file.metadata()?.len();
        Ok(Rotating {
            path: path.to_path_buf(),
            file,
            bytes,
            bytes_max,
            keep,
        })
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        if self.bytes + line.len() as u64 + 1 > self.bytes_max && self.bytes > 0 {
            for i in (1..self.keep).rev() {
                let from = self.path.with_extension(format!("log.{i}"));
                if from.exists() {
                    std::fs::rename(&from, self.path.with_extension(format!("log.{}", i + 1)))?;
                }
            }
            std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.bytes = 0;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }
}

impl AuditLog {
    /// Whether a call of this operation is recorded (so its body is worth parsing).
    pub fn wants(&self, operation: &str) -> bool {
        self.data_events || !DATA_EVENTS.contains(&operation)
    }

    pub fn open(
        path: &Path,
        bytes_max: u64,
        keep: usize,
        data_events: bool,
    ) -> std::io::Result<Self> {
        let mut out = Rotating::open(path, bytes_max, keep)?;
        let (tx, rx) = sync_channel::<String>(QUEUE_EVENTS_MAX);
        std::thread::Builder::new()
            .name("runnel-audit".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    if let Err(e) = out.write_line(&line) {
                        tracing::error!(error = %e, "audit trail write failed");
                    }
                }
            })?;
        Ok(AuditLog {
            tx,
            dropped: AtomicU64::new(0),
            data_events,
        })
    }

    /// Records one finished call.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        ctx: &AuditCtx,
        now_ms: u64,
        region: &str,
        account: &str,
        source_ip: std::net::IpAddr,
        user_agent: Option<&str>,
        request_id: Option<&str>,
        error: Option<&ErrorNote>,
    ) {
        let f = ctx.facts.lock().clone();
        let Some(operation) = f.operation else { return };
        let data_event = DATA_EVENTS.contains(&operation.as_str());
        if data_event && !self.data_events {
            return;
        }
        let identity = match &f.principal {
            Some((name, arn)) => json!({
                "type": "IAMUser", "principalId": f.access_key, "arn": arn, "accountId": account,
                "accessKeyId": f.access_key, "userName": name,
            }),
            None => json!({ "type": "Unknown", "accountId": account, "accessKeyId": f.access_key }),
        };
        let read_only = ["Describe", "List", "Get"]
            .iter()
            .any(|p| operation.starts_with(p));
        let event = json!({
            "eventVersion": "1.08",
            "userIdentity": identity,
            "eventTime": iso(now_ms),
            "eventSource": f.source,
            "eventName": operation,
            "awsRegion": region,
            "sourceIPAddress": source_ip.to_string(),
            "userAgent": user_agent,
            "requestParameters": f.params,
            "responseElements": Value::Null,
            "errorCode": error.map(|e| e.error_type.clone()),
            "errorMessage": error.map(|e| e.message.clone()),
            "requestID": request_id,
            "eventID": uuid(),
            "readOnly": read_only,
            "eventType": "AwsApiCall",
            "managementEvent": !data_event,
            "recipientAccountId": account,
            "eventCategory": if data_event { "Data" } else { "Management" },
        });
        match self.tx.try_send(event.to_string()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, "audit trail queue full; events dropped");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_stripped() {
        let v = json!({"StreamName": "s", "Records": [{"Data": "c2VjcmV0", "PartitionKey": "k"}], "Data": "eA=="});
        assert_eq!(
            strip_blobs(&v),
            json!({"StreamName": "s", "Records": [{"PartitionKey": "k"}]})
        );
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }
}
