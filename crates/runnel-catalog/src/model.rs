use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

/// The lifecycle of a stream. Transitions are timed: `since_ms` says when the
/// state began, and the service moves CREATING→ACTIVE and finishes DELETING
/// once the configured transition time has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamState {
    Creating,
    Active,
    Updating,
    Deleting,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u32,
    /// Inclusive hash-key range, as decimal strings (u128 does not fit JSON numbers).
    pub hash_start: String,
    pub hash_end: String,
    #[serde(default)]
    pub parent: Option<u32>,
    #[serde(default)]
    pub adjacent_parent: Option<u32>,
    /// Position of the first record the shard can hold.
    #[serde(default)]
    pub starting_position: u64,
    /// Set when the shard is closed by a reshard: its last position + 1.
    #[serde(default)]
    pub closed_at_position: Option<u64>,
    #[serde(default)]
    pub created_ms: u64,
    /// When the shard was closed; it stays listed until its data expires.
    #[serde(default)]
    pub closed_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub name: String,
    pub uid: u64,
    pub created_ms: u64,
    pub state: StreamState,
    pub state_since_ms: u64,
    pub mode: StreamMode,
    pub retention_hours: u32,
    pub shards: Vec<ShardRecord>,
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    #[serde(default = "default_max_record_size_kib")]
    pub max_record_size_kib: u32,
    #[serde(default)]
    pub shard_level_metrics: Vec<String>,
    /// On-demand warm throughput target (UpdateStreamWarmThroughput).
    #[serde(default)]
    pub warm_throughput_mibps: Option<u32>,
    /// Enhanced fan-out consumers registered on the stream.
    #[serde(default)]
    pub consumers: Vec<ConsumerRecord>,
    /// Server-side encryption periods (StartStreamEncryption), oldest first.
    #[serde(default)]
    pub encryption: Vec<EncryptionPeriod>,
    /// When UpdateShardCount ran (AWS allows 10 per rolling 24 hours).
    #[serde(default)]
    pub scaling_events_ms: Vec<u64>,
    /// Resource policies (PutResourcePolicy) by the ARN they are attached to:
    /// the stream's or one of its consumers'.
    #[serde(default)]
    pub resource_policies: std::collections::BTreeMap<String, String>,
}

/// One period during which new records of a stream were encrypted, from
/// StartStreamEncryption to StopStreamEncryption (or a key change). A record
/// at (shard, position) belongs to the period if `start <= position < stop`
/// for that shard, where a shard missing from `starts` (created by a reshard
/// during the period) starts at its `starting_position`, and a shard missing
/// from a present `stops` (created after the period) is not in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionPeriod {
    /// The KeyId as the caller gave it (key id, ARN, alias name or alias ARN).
    pub key_id: String,
    pub key_arn: String,
    /// The period's data key, wrapped by the KMS key (a KMS ciphertext blob), hex.
    pub wrapped_data_key: String,
    pub started_ms: u64,
    /// Shard index → first encrypted log position.
    #[serde(default)]
    pub starts: std::collections::BTreeMap<u32, u64>,
    /// Shard index → first log position after the period; `None` while active.
    #[serde(default)]
    pub stops: Option<std::collections::BTreeMap<u32, u64>>,
}

/// A registered stream consumer (enhanced fan-out). Its ARN is
/// `<stream ARN>/consumer/<name>:<creation epoch seconds>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRecord {
    pub name: String,
    pub created_ms: u64,
    pub state: StreamState,
    pub state_since_ms: u64,
}

fn default_max_record_size_kib() -> u32 {
    1024
}
