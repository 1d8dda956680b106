use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use runnel_catalog::{Catalog, StreamRecord, StreamState};
use runnel_log::{Log, ShardKey};
use runnel_types::{Clock, SequenceNumber, ShardId, StreamArn};

use crate::api::StreamAddressed;
use crate::error::{Result, StreamsError};
use crate::token::Sealer;
use crate::validate::Violations;

#[derive(Clone, Debug)]
pub struct StreamsConfig {
    pub region: String,
    pub account_id: String,
    /// How long CREATING, UPDATING and DELETING last.
    pub stream_transition_ms: u64,
    pub account_shards_max: u32,
    pub on_demand_streams_max: u32,
    /// Per-shard throughput quotas: `None` off, `Some(m)` AWS's rates × m.
    pub quotas: crate::quota::QuotaSetting,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            stream_transition_ms: 500,
            account_shards_max: runnel_types::limits::ACCOUNT_SHARDS_MAX_DEFAULT,
            on_demand_streams_max: runnel_types::limits::ON_DEMAND_STREAM_COUNT_MAX_DEFAULT,
            quotas: Some(1.0),
        }
    }
}

/// An immutable snapshot of one stream: the catalog record plus what the
/// data path derives from it. Replaced whole on every change.
/// The members of any Kinesis request that name the resource it acts on;
/// decoding only these skips every other member (record data above all).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRef {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
    #[serde(rename = "ResourceARN")]
    pub resource_arn: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub stream_name: Option<String>,
    pub shard_iterator: Option<String>,
}

pub(crate) struct StreamEntry {
    pub rec: StreamRecord,
    pub epoch: u32,
    /// Open shards sorted by hash range: (start, end, shard index).
    pub routes: Vec<(u128, u128, u32)>,
    /// Stream-level metric series resolved on first use (see metrics.rs).
    pub metric_handles: parking_lot::RwLock<Vec<(&'static str, runnel_metrics::Handle)>>,
}

impl StreamEntry {
    pub fn new(rec: StreamRecord) -> Self {
        let mut routes: Vec<(u128, u128, u32)> = rec
            .shards
            .iter()
            .filter(|s| s.closed_at_position.is_none())
            .filter_map(|s| {
                Some((
                    s.hash_start.parse().ok()?,
                    s.hash_end.parse().ok()?,
                    s.index,
                ))
            })
            .collect();
        routes.sort_unstable();
        StreamEntry {
            epoch: SequenceNumber::epoch_of(rec.uid),
            rec,
            routes,
            metric_handles: parking_lot::RwLock::default(),
        }
    }

    /// The open shard whose hash-key range holds `key`.
    pub fn route(&self, key: u128) -> Option<u32> {
        let i = self.routes.partition_point(|(start, _, _)| *start <= key);
        let (start, end, index) = *self.routes.get(i.checked_sub(1)?)?;
        (start <= key && key <= end).then_some(index)
    }

    /// The sequence number of the record at log `position`: its position
    /// field is `position + 1`, because field 0 means "before the first
    /// record" (a shard's StartingSequenceNumber), which AFTER_SEQUENCE_NUMBER
    /// and SubscribeToShard continuations need to be able to name.
    pub fn seq_at(&self, index: u32, position: u64) -> SequenceNumber {
        SequenceNumber::new(self.epoch, index, position + 1)
    }

    pub fn shard_key(&self, index: u32) -> ShardKey {
        ShardKey {
            stream_uid: self.rec.uid,
            shard_index: index,
        }
    }

    pub fn retention_ms(&self) -> u64 {
        u64::from(self.rec.retention_hours) * 3_600_000
    }

    /// A closed shard disappears once its data is past retention.
    pub fn expired(&self, shard: &runnel_catalog::ShardRecord, now_ms: u64) -> bool {
        shard
            .closed_ms
            .is_some_and(|c| c.saturating_add(self.retention_ms()) <= now_ms)
    }

    pub fn shard(&self, index: u32) -> Option<&runnel_catalog::ShardRecord> {
        self.rec.shards.iter().find(|s| s.index == index)
    }
}

#[derive(Default)]
pub(crate) struct Maps {
    pub by_name: BTreeMap<String, Arc<StreamEntry>>,
    pub by_uid: HashMap<u64, Arc<StreamEntry>>,
}

pub struct StreamsService {
    pub(crate) cfg: StreamsConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) log: Arc<Log>,
    pub(crate) sealer: Sealer,
    pub(crate) maps: RwLock<Maps>,
    /// Serialises control-plane changes (catalog write + map swap).
    pub(crate) control: Mutex<()>,
    /// Per stream uid: writers hold it shared from routing until the append
    /// is acknowledged; resharding holds it exclusively while it closes
    /// shards, so no record lands in a shard after its ending position.
    pub(crate) write_gates: Mutex<HashMap<u64, Arc<tokio::sync::RwLock<()>>>>,
    pub(crate) quotas: crate::quota::Quotas,
    pub(crate) scaling: Mutex<HashMap<u64, crate::capacity::ScaleState>>,
    pub(crate) fanout: crate::fanout::FanoutHub,
    pub(crate) metrics: Arc<runnel_metrics::Registry>,
    pub(crate) encryption: crate::encryption::Encryption,
}

impl StreamsService {
    pub fn new(
        cfg: StreamsConfig,
        clock: Arc<dyn Clock>,
        catalog: Arc<dyn Catalog>,
        log: Arc<Log>,
        metrics: Arc<runnel_metrics::Registry>,
    ) -> Result<Self> {
        let sealer = Sealer::new(catalog.secret("tokens")?);
        let mut maps = Maps::default();
        for rec in catalog.load_streams()? {
            let entry = Arc::new(StreamEntry::new(rec));
            maps.by_uid.insert(entry.rec.uid, entry.clone());
            maps.by_name.insert(entry.rec.name.clone(), entry);
        }
        Ok(StreamsService {
            cfg,
            clock,
            catalog,
            log,
            sealer,
            maps: RwLock::new(maps),
            control: Mutex::new(()),
            write_gates: Mutex::default(),
            quotas: crate::quota::Quotas::default(),
            scaling: Mutex::default(),
            fanout: crate::fanout::FanoutHub::default(),
            metrics,
            encryption: Default::default(),
        })
    }

    pub fn config(&self) -> &StreamsConfig {
        &self.cfg
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn arn(&self, name: &str) -> String {
        StreamArn::new(&self.cfg.region, &self.cfg.account_id, name).to_string()
    }

    /// The state a stream is in now: timed transitions complete on their own.
    pub(crate) fn state_of(&self, rec: &StreamRecord) -> StreamState {
        let done = self.now_ms()
            >= rec
                .state_since_ms
                .saturating_add(self.cfg.stream_transition_ms);
        match rec.state {
            StreamState::Creating | StreamState::Updating if done => StreamState::Active,
            s => s,
        }
    }

    /// A DELETING stream whose transition has passed no longer exists.
    pub(crate) fn is_gone(&self, rec: &StreamRecord) -> bool {
        rec.state == StreamState::Deleting
            && self.now_ms()
                >= rec
                    .state_since_ms
                    .saturating_add(self.cfg.stream_transition_ms)
    }

    pub(crate) fn not_found(&self, name: &str) -> StreamsError {
        StreamsError::ResourceNotFound(format!(
            "Stream {name} under account {} not found.",
            self.cfg.account_id
        ))
    }

    pub(crate) fn shard_not_found(&self, stream: &str, shard: &str) -> StreamsError {
        StreamsError::ResourceNotFound(format!(
            "Shard {shard} in stream {stream} under account {} does not exist",
            self.cfg.account_id
        ))
    }

    pub(crate) fn not_active(&self, rec: &StreamRecord) -> StreamsError {
        StreamsError::ResourceInUse(format!(
            "Stream {} under account {} not ACTIVE, instead in state {}",
            rec.name,
            self.cfg.account_id,
            status_name(self.state_of(rec))
        ))
    }

    /// Validates `StreamName`/`StreamARN` and returns the name they address.
    pub(crate) fn stream_name_of(
        &self,
        input: &dyn StreamAddressed,
        v: &mut Violations,
    ) -> Option<String> {
        let internal = crate::internal::internal_caller()
            && input
                .stream_name()
                .is_some_and(crate::internal::is_internal_name);
        if !internal {
            v.stream_name("streamName", input.stream_name());
        }
        v.stream_arn("streamARN", input.stream_arn());
        match (
            input.stream_name(),
            input.stream_arn().and_then(StreamArn::parse),
        ) {
            (Some(name), _) => Some(name.to_string()),
            (None, Some(arn)) => Some(arn.stream_name),
            (None, None) => None,
        }
    }

    /// Resolves the stream an input addresses, after running the caller's
    /// model checks. Errors as AWS: model violations first, then existence.
    pub(crate) fn resolve(
        &self,
        input: &dyn StreamAddressed,
        mut v: Violations,
    ) -> Result<Arc<StreamEntry>> {
        let name = self.stream_name_of(input, &mut v);
        v.finish()?;
        let name = name.ok_or_else(|| {
            StreamsError::Validation("Either StreamName or StreamARN should be provided.".into())
        })?;
        if let (Some(n), Some(arn)) = (
            input.stream_name(),
            input.stream_arn().and_then(StreamArn::parse),
        ) {
            if n != arn.stream_name {
                return Err(StreamsError::InvalidArgument(format!(
                    "StreamARN {} and StreamName {n} do not refer to the same stream.",
                    input.stream_arn().unwrap_or_default()
                )));
            }
        }
        if let Some(arn) = input.stream_arn().and_then(StreamArn::parse) {
            if arn.account != self.cfg.account_id || arn.region != self.cfg.region {
                return Err(self.not_found(&arn.stream_name));
            }
        }
        self.lookup(&name)
    }

    /// An internal stream (internal.rs) answers only internal callers.
    pub(crate) fn lookup(&self, name: &str) -> Result<Arc<StreamEntry>> {
        if crate::internal::is_internal_name(name) && !crate::internal::internal_caller() {
            return Err(self.not_found(name));
        }
        let entry = self.maps.read().by_name.get(name).cloned();
        match entry {
            Some(e) if !self.is_gone(&e.rec) => Ok(e),
            _ => Err(self.not_found(name)),
        }
    }

    pub(crate) fn lookup_uid(&self, uid: u64) -> Option<Arc<StreamEntry>> {
        let entry = self.maps.read().by_uid.get(&uid).cloned()?;
        (!self.is_gone(&entry.rec)).then_some(entry)
    }

    /// Streams that accept records: ACTIVE or UPDATING.
    pub(crate) fn writable(&self, entry: &StreamEntry) -> Result<()> {
        match self.state_of(&entry.rec) {
            StreamState::Active | StreamState::Updating => Ok(()),
            StreamState::Creating | StreamState::Deleting => Err(self.not_found(&entry.rec.name)),
        }
    }

    /// Persists a changed record and publishes it. Caller holds `control`.
    pub(crate) fn commit(&self, rec: StreamRecord) -> Result<Arc<StreamEntry>> {
        self.catalog.put_stream(&rec)?;
        let entry = Arc::new(StreamEntry::new(rec));
        let mut maps = self.maps.write();
        maps.by_uid.insert(entry.rec.uid, entry.clone());
        maps.by_name.insert(entry.rec.name.clone(), entry.clone());
        Ok(entry)
    }

    pub(crate) fn shard_id_of(&self, entry: &StreamEntry, shard_id: &str) -> Result<u32> {
        let now = self.now_ms();
        ShardId::parse(shard_id)
            .map(|s| s.0)
            .filter(|i| {
                entry
                    .rec
                    .shards
                    .iter()
                    .any(|s| s.index == *i && !entry.expired(s, now))
            })
            .ok_or_else(|| self.shard_not_found(&entry.rec.name, shard_id))
    }

    /// The quota setting of a stream: its `runnel:quotas` tag, else the server's.
    pub(crate) fn quota_of(&self, entry: &StreamEntry) -> crate::quota::QuotaSetting {
        entry
            .rec
            .tags
            .get(crate::quota::QUOTA_TAG)
            .and_then(|t| crate::quota::parse_setting(t).ok())
            .unwrap_or(self.cfg.quotas)
    }

    pub(crate) fn write_gate(&self, uid: u64) -> Arc<tokio::sync::RwLock<()>> {
        self.write_gates.lock().entry(uid).or_default().clone()
    }

    /// Takes the stream's write gate (shared) and returns the snapshot that is
    /// current under it: routing with it cannot race a reshard.
    pub(crate) async fn enter_write(
        &self,
        uid: u64,
        name: &str,
    ) -> Result<(tokio::sync::OwnedRwLockReadGuard<()>, Arc<StreamEntry>)> {
        let guard = self.write_gate(uid).read_owned().await;
        let entry = self.lookup_uid(uid).ok_or_else(|| self.not_found(name))?;
        self.writable(&entry)?;
        Ok((guard, entry))
    }

    /// Background housekeeping: finishes deletions whose time has come and
    /// reclaims expired log segments. Returns what retention reclaimed.
    pub fn housekeeping(&self) -> Result<runnel_log::RetentionReport> {
        self.finish_deletions()?;
        let maps = self.maps.read();
        let retention: HashMap<u64, u64> = maps
            .by_uid
            .values()
            .map(|e| (e.rec.uid, e.retention_ms()))
            .collect();
        drop(maps);
        Ok(self
            .log
            .enforce_retention(&|uid| retention.get(&uid).copied())?)
    }

    pub fn finish_deletions(&self) -> Result<()> {
        let _guard = self.control.lock();
        let gone: Vec<Arc<StreamEntry>> = self
            .maps
            .read()
            .by_name
            .values()
            .filter(|e| self.is_gone(&e.rec))
            .cloned()
            .collect();
        for entry in gone {
            self.catalog.delete_stream(&entry.rec.name)?;
            let mut maps = self.maps.write();
            maps.by_name.remove(&entry.rec.name);
            maps.by_uid.remove(&entry.rec.uid);
            drop(maps);
            self.log.drop_stream(entry.rec.uid);
            self.write_gates.lock().remove(&entry.rec.uid);
            self.quotas.forget_stream(entry.rec.uid);
            self.fanout.end_stream(entry.rec.uid);
            self.encryption.forget_stream(entry.rec.uid);
            tracing::info!(stream = %entry.rec.name, "stream deleted");
        }
        Ok(())
    }
}

pub(crate) fn status_name(s: StreamState) -> &'static str {
    match s {
        StreamState::Creating => "CREATING",
        StreamState::Active => "ACTIVE",
        StreamState::Updating => "UPDATING",
        StreamState::Deleting => "DELETING",
    }
}

pub(crate) fn mode_name(m: runnel_catalog::StreamMode) -> &'static str {
    match m {
        runnel_catalog::StreamMode::Provisioned => "PROVISIONED",
        runnel_catalog::StreamMode::OnDemand => "ON_DEMAND",
    }
}

impl StreamsService {
    /// The ARN an API request acts on, for authorization: the consumer,
    /// resource or stream it names (a shard iterator names its stream), else
    /// every stream of the account.
    pub fn resource_arn_of(&self, input: &ResourceRef) -> String {
        if let Some(a) = input
            .consumer_arn
            .as_deref()
            .or(input.resource_arn.as_deref())
            .or(input.stream_arn.as_deref())
        {
            return a.to_string();
        }
        if let Some(name) = input.stream_name.as_deref() {
            return self.arn(name);
        }
        if let Some((pos, _)) = input
            .shard_iterator
            .as_deref()
            .and_then(|t| crate::token::IteratorPos::decode(&self.sealer, t))
        {
            if let Some(entry) = self.lookup_uid(pos.stream_uid) {
                return self.arn(&entry.rec.name);
            }
        }
        format!(
            "arn:aws:kinesis:{}:{}:stream/*",
            self.cfg.region, self.cfg.account_id
        )
    }
}
