//! Server-side encryption: StartStreamEncryption / StopStreamEncryption and
//! the envelope encryption of records.
//!
//! Starting encryption asks the KMS for a data key (context
//! `aws:kinesis:arn` = the stream ARN), keeps the *wrapped* data key in the
//! stream's catalog record and the plaintext one only in memory. While a
//! period is active every new record is stored as
//!
//! ```text
//! data          = nonce (12) ‖ AES-256-GCM(pk length u16 LE ‖ partition key ‖ data) ‖ tag (16)
//! partition key = ""   (so neither the key nor the data is on disk in the clear)
//! ```
//!
//! with associated data `"runnel-record" ‖ stream uid ‖ shard index`. Which
//! records are encrypted is decided by position, never by content: the start
//! and stop positions of each shard are taken under the stream's exclusive
//! write gate (as resharding does) and kept in [`EncryptionPeriod`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use bytes::Bytes;
use parking_lot::Mutex;
use runnel_catalog::{EncryptionPeriod, StreamState};
use runnel_kms::{Kms, KmsError};
use runnel_log::RecordIn;
use serde::Deserialize;

use crate::api::{Empty, StreamAddressed};
use crate::error::{Result, StreamsError};
use crate::service::{StreamEntry, StreamsService};
use crate::validate::Violations;

const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const DATA_KEY_BYTES: usize = 32;
const KEY_ID_CHARS_MAX: usize = 2048;
const CONTEXT_KEY: &str = "aws:kinesis:arn";
const RECORD_AAD_PREFIX: &[u8] = b"runnel-record";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamEncryptionInput {
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub encryption_type: Option<String>,
    pub key_id: Option<String>,
}

impl StreamAddressed for StreamEncryptionInput {
    fn stream_name(&self) -> Option<&str> {
        self.stream_name.as_deref()
    }
    fn stream_arn(&self) -> Option<&str> {
        self.stream_arn.as_deref()
    }
}

/// The KMS handle and the plaintext data keys, by (stream uid, period index).
#[derive(Default)]
pub(crate) struct Encryption {
    kms: OnceLock<Arc<Kms>>,
    data_keys: Mutex<HashMap<(u64, usize), Arc<Aes256Gcm>>>,
}

impl Encryption {
    pub(crate) fn forget_stream(&self, uid: u64) {
        self.data_keys.lock().retain(|(u, _), _| *u != uid);
    }
}

/// Seals the records of one put under the stream's active data key.
pub(crate) struct RecordSealer {
    cipher: Arc<Aes256Gcm>,
    uid: u64,
}

fn aad(uid: u64, shard: u32) -> Vec<u8> {
    let mut a = RECORD_AAD_PREFIX.to_vec();
    a.extend_from_slice(&uid.to_le_bytes());
    a.extend_from_slice(&shard.to_le_bytes());
    a
}

fn internal() -> StreamsError {
    StreamsError::Internal("Internal service failure.".into())
}

impl RecordSealer {
    pub(crate) fn seal(&self, shard: u32, partition_key: &str, data: &[u8]) -> Result<RecordIn> {
        let pk = partition_key.as_bytes();
        let pk_len = u16::try_from(pk.len()).map_err(|_| internal())?;
        let mut plain = Vec::with_capacity(2 + pk.len() + data.len());
        plain.extend_from_slice(&pk_len.to_le_bytes());
        plain.extend_from_slice(pk);
        plain.extend_from_slice(data);
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(self.uid, shard),
                },
            )
            .map_err(|_| internal())?;
        let mut out = Vec::with_capacity(NONCE_BYTES + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(RecordIn {
            partition_key: String::new(),
            data: Bytes::from(out),
        })
    }
}

fn kms_error(e: KmsError) -> StreamsError {
    match e {
        KmsError::NotFound(m) => StreamsError::KmsNotFound(m),
        KmsError::Disabled(m) => StreamsError::KmsDisabled(m),
        KmsError::Internal(_) => internal(),
        KmsError::InvalidCiphertext(m)
        | KmsError::IncorrectKey(m)
        | KmsError::Validation(m)
        | KmsError::AlreadyExists(m)
        | KmsError::UnsupportedOperation(m)
        | KmsError::Serialization(m) => StreamsError::KmsInvalidState(m),
    }
}

/// Whether (shard, position) falls in `period`.
fn covers(entry: &StreamEntry, period: &EncryptionPeriod, shard: u32, position: u64) -> bool {
    let start = match period.starts.get(&shard) {
        Some(s) => *s,
        None => match entry.shard(shard) {
            Some(s) => s.starting_position,
            None => return false,
        },
    };
    let stop = match &period.stops {
        None => u64::MAX,
        Some(stops) => match stops.get(&shard) {
            Some(s) => *s,
            None => return false,
        },
    };
    start <= position && position < stop
}

impl StreamsService {
    /// Connects the key service; without it stream encryption is refused.
    pub fn attach_kms(&self, kms: Arc<Kms>) {
        if self.encryption.kms.set(kms).is_err() {
            tracing::warn!("a key service was already attached");
        }
    }

    /// The catalog, for the key service to keep its keys in.
    pub fn catalog(&self) -> Arc<dyn runnel_catalog::Catalog> {
        self.catalog.clone()
    }

    pub fn kms(&self) -> Option<Arc<Kms>> {
        self.encryption.kms.get().cloned()
    }

    fn kms_or_fail(&self) -> Result<Arc<Kms>> {
        self.kms().ok_or_else(|| {
            StreamsError::KmsInvalidState("No key service is attached to this server.".into())
        })
    }

    /// `KMS` while new records are encrypted, else `NONE`.
    pub(crate) fn encryption_type(entry: &StreamEntry) -> &'static str {
        match Self::active_period(entry) {
            Some(_) => "KMS",
            None => "NONE",
        }
    }

    pub(crate) fn encryption_key_id(entry: &StreamEntry) -> Option<String> {
        Self::active_period(entry).map(|(_, p)| p.key_id.clone())
    }

    fn active_period(entry: &StreamEntry) -> Option<(usize, &EncryptionPeriod)> {
        entry
            .rec
            .encryption
            .iter()
            .enumerate()
            .next_back()
            .filter(|(_, p)| p.stops.is_none())
    }

    fn context(&self, entry: &StreamEntry) -> BTreeMap<String, String> {
        BTreeMap::from([(CONTEXT_KEY.to_string(), self.arn(&entry.rec.name))])
    }

    /// The plaintext data key of a period; fails if its KMS key is disabled.
    fn data_key(&self, entry: &StreamEntry, index: usize) -> Result<Arc<Aes256Gcm>> {
        let period = entry.rec.encryption.get(index).ok_or_else(internal)?;
        let kms = self.kms_or_fail()?;
        kms.check_usable(&period.key_arn).map_err(kms_error)?;
        let cache_key = (entry.rec.uid, index);
        if let Some(c) = self.encryption.data_keys.lock().get(&cache_key) {
            return Ok(c.clone());
        }
        let wrapped = hex::decode(&period.wrapped_data_key).map_err(|_| internal())?;
        let (plain, _) = kms
            .decrypt(&wrapped, &self.context(entry))
            .map_err(kms_error)?;
        let key: [u8; DATA_KEY_BYTES] = plain.try_into().map_err(|_| internal())?;
        let cipher = Arc::new(Aes256Gcm::new(&key.into()));
        self.encryption
            .data_keys
            .lock()
            .insert(cache_key, cipher.clone());
        Ok(cipher)
    }

    /// The sealer for a put, when the stream encrypts new records.
    pub(crate) fn record_sealer(&self, entry: &StreamEntry) -> Result<Option<RecordSealer>> {
        match Self::active_period(entry) {
            None => Ok(None),
            Some((index, _)) => Ok(Some(RecordSealer {
                cipher: self.data_key(entry, index)?,
                uid: entry.rec.uid,
            })),
        }
    }

    /// Reads of an encrypting stream fail while its key is unusable.
    pub(crate) fn check_readable(&self, entry: &StreamEntry) -> Result<()> {
        match Self::active_period(entry) {
            None => Ok(()),
            Some((index, _)) => self.data_key(entry, index).map(|_| ()),
        }
    }

    /// Decrypts a stored record if its position is in an encryption period.
    /// Returns the partition key, the data and whether it was encrypted.
    pub(crate) fn open_record(
        &self,
        entry: &StreamEntry,
        shard: u32,
        position: u64,
        partition_key: String,
        data: Bytes,
    ) -> Result<(String, Bytes, bool)> {
        let Some(index) = entry
            .rec
            .encryption
            .iter()
            .position(|p| covers(entry, p, shard, position))
        else {
            return Ok((partition_key, data, false));
        };
        let cipher = self.data_key(entry, index)?;
        let corrupt = || {
            tracing::error!(stream = %entry.rec.name, shard, position, "encrypted record does not decrypt");
            internal()
        };
        if data.len() < NONCE_BYTES + TAG_BYTES {
            return Err(corrupt());
        }
        let (nonce, ct) = data.split_at(NONCE_BYTES);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(entry.rec.uid, shard),
                },
            )
            .map_err(|_| corrupt())?;
        if plain.len() < 2 {
            return Err(corrupt());
        }
        let pk_len = usize::from(u16::from_le_bytes([plain[0], plain[1]]));
        if plain.len() < 2 + pk_len {
            return Err(corrupt());
        }
        let pk = std::str::from_utf8(&plain[2..2 + pk_len])
            .map_err(|_| corrupt())?
            .to_string();
        let body = Bytes::copy_from_slice(&plain[2 + pk_len..]);
        Ok((pk, body, true))
    }

    fn encryption_request(
        &self,
        input: &StreamEncryptionInput,
    ) -> Result<(Arc<StreamEntry>, String)> {
        let mut v = Violations::new();
        v.required("encryptionType", &input.encryption_type);
        v.required("keyId", &input.key_id);
        v.string("keyId", input.key_id.as_deref(), 1, KEY_ID_CHARS_MAX);
        v.one_of(
            "encryptionType",
            input.encryption_type.as_deref(),
            &["NONE", "KMS"],
        );
        let entry = self.resolve(input, v)?;
        if input.encryption_type.as_deref() != Some("KMS") {
            return Err(StreamsError::InvalidArgument(format!(
                "EncryptionType {} is not supported. Only KMS is supported.",
                input.encryption_type.as_deref().unwrap_or_default()
            )));
        }
        Ok((entry, input.key_id.clone().unwrap_or_default()))
    }

    /// Closes the active period (if any) and, with `start`, opens a new one,
    /// under the control lock and the stream's exclusive write gate.
    fn switch_encryption(
        &self,
        entry: &StreamEntry,
        start: Option<(String, String, String)>,
    ) -> Result<()> {
        let _control = self.control.lock();
        let gate = self.write_gate(entry.rec.uid);
        let _writers = gate.blocking_write();
        let entry = self.lookup(&entry.rec.name)?;
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        let ends: BTreeMap<u32, u64> = entry
            .rec
            .shards
            .iter()
            .map(|s| (s.index, self.log.end_position(entry.shard_key(s.index))))
            .collect();
        let mut rec = entry.rec.clone();
        let now = self.now_ms();
        if let Some(active) = rec.encryption.last_mut().filter(|p| p.stops.is_none()) {
            active.stops = Some(ends.clone());
        }
        if let Some((key_id, key_arn, wrapped)) = start {
            rec.encryption.push(EncryptionPeriod {
                key_id,
                key_arn,
                wrapped_data_key: wrapped,
                started_ms: now,
                starts: ends,
                stops: None,
            });
        }
        rec.state = if self.cfg.stream_transition_ms == 0 {
            StreamState::Active
        } else {
            StreamState::Updating
        };
        rec.state_since_ms = now;
        self.commit(rec)?;
        Ok(())
    }

    pub fn start_stream_encryption(&self, input: StreamEncryptionInput) -> Result<Empty> {
        let (entry, key_ref) = self.encryption_request(&input)?;
        let kms = self.kms_or_fail()?;
        let key = kms.describe(&key_ref).map_err(kms_error)?;
        if !key.enabled {
            return Err(StreamsError::KmsDisabled(format!(
                "KMS key {} is disabled.",
                key.arn
            )));
        }
        if self.state_of(&entry.rec) != StreamState::Active {
            return Err(self.not_active(&entry.rec));
        }
        let (_, blob, arn) = kms
            .generate_data_key(&key.arn, DATA_KEY_BYTES, &self.context(&entry))
            .map_err(kms_error)?;
        self.switch_encryption(&entry, Some((key_ref, arn, hex::encode(blob))))?;
        tracing::info!(stream = %entry.rec.name, key = %key.arn, "stream encryption started");
        Ok(Empty {})
    }

    pub fn stop_stream_encryption(&self, input: StreamEncryptionInput) -> Result<Empty> {
        let (entry, _) = self.encryption_request(&input)?;
        if Self::active_period(&entry).is_none() {
            return Ok(Empty {});
        }
        self.switch_encryption(&entry, None)?;
        tracing::info!(stream = %entry.rec.name, "stream encryption stopped");
        Ok(Empty {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_catalog::{ShardRecord, StreamMode, StreamRecord};

    fn shard(index: u32, starting_position: u64) -> ShardRecord {
        ShardRecord {
            index,
            hash_start: "0".into(),
            hash_end: "1".into(),
            parent: None,
            adjacent_parent: None,
            starting_position,
            closed_at_position: None,
            created_ms: 0,
            closed_ms: None,
        }
    }

    fn period(starts: &[(u32, u64)], stops: Option<&[(u32, u64)]>) -> EncryptionPeriod {
        EncryptionPeriod {
            key_id: "k".into(),
            key_arn: "arn".into(),
            wrapped_data_key: String::new(),
            started_ms: 0,
            starts: starts.iter().copied().collect(),
            stops: stops.map(|s| s.iter().copied().collect()),
        }
    }

    fn entry(shards: Vec<ShardRecord>) -> StreamEntry {
        let mut rec: StreamRecord = serde_json::from_value(serde_json::json!({
            "name": "s", "uid": 1, "created_ms": 0, "state": "Active", "state_since_ms": 0,
            "mode": "Provisioned", "retention_hours": 24, "shards": []
        }))
        .expect("record");
        rec.mode = StreamMode::Provisioned;
        rec.shards = shards;
        StreamEntry::new(rec)
    }

    #[test]
    fn periods_cover_exactly_their_positions() {
        // Shard 0 existed at start (position 5); shard 1 was created during
        // the period; shard 2 after it stopped.
        let e = entry(vec![shard(0, 0), shard(1, 0), shard(2, 0)]);
        let p = period(&[(0, 5)], Some(&[(0, 9), (1, 3)]));
        assert!(!covers(&e, &p, 0, 4));
        assert!(covers(&e, &p, 0, 5));
        assert!(covers(&e, &p, 0, 8));
        assert!(!covers(&e, &p, 0, 9));
        assert!(covers(&e, &p, 1, 0));
        assert!(!covers(&e, &p, 1, 3));
        assert!(!covers(&e, &p, 2, 0));
        let active = period(&[(0, 5)], None);
        assert!(covers(&e, &active, 2, 0));
        assert!(covers(&e, &active, 0, u64::MAX - 1));
    }

    #[test]
    fn sealed_records_open_only_in_their_shard() {
        let cipher = Arc::new(Aes256Gcm::new(&[3u8; 32].into()));
        let sealer = RecordSealer {
            cipher: cipher.clone(),
            uid: 1,
        };
        let rec = sealer.seal(0, "pk", b"data").expect("seal");
        assert!(rec.partition_key.is_empty());
        assert!(!rec.data.windows(4).any(|w| w == b"data"));
        let (nonce, ct) = rec.data.split_at(NONCE_BYTES);
        let open = |shard| {
            cipher.decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &aad(1, shard),
                },
            )
        };
        assert_eq!(open(0).expect("open"), b"\x02\x00pkdata");
        assert!(open(1).is_err());
    }
}
