//! Keys and aliases: kept in memory, written through to the catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use parking_lot::Mutex;
use runnel_catalog::Catalog;
use serde::{Deserialize, Serialize};

use crate::KmsError;

const STATE_SETTING: &str = "kms/state";
const BLOB_MAGIC: &[u8; 4] = b"RKM1";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;
const KEY_MATERIAL_BYTES: usize = 32;
/// The AWS-managed key stream encryption uses when asked for `alias/aws/kinesis`.
pub const KINESIS_DEFAULT_ALIAS: &str = "alias/aws/kinesis";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub created_ms: u64,
    pub enabled: bool,
    /// `nonce ‖ AES-256-GCM(master key, material) ‖ tag`, hex.
    pub wrapped: String,
    /// AWS-managed (the default `alias/aws/kinesis` key).
    #[serde(default)]
    pub aws_managed: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AliasRecord {
    pub target: String,
    pub created_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub keys: BTreeMap<String, KeyRecord>,
    /// Alias name (`alias/...`) → key id.
    #[serde(default)]
    pub aliases: BTreeMap<String, AliasRecord>,
}

/// What a key reference resolved to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub arn: String,
    pub enabled: bool,
}

pub struct Kms {
    catalog: Arc<dyn Catalog>,
    master: Aes256Gcm,
    pub(crate) region: String,
    pub(crate) account: String,
    pub(crate) state: Mutex<State>,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, KmsError> {
    let nonce: [u8; NONCE_BYTES] = rand::random();
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| KmsError::Internal("Internal service failure.".into()))?;
    let mut out = Vec::with_capacity(NONCE_BYTES + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_BYTES + TAG_BYTES {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE_BYTES);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .ok()
}

/// GCM associated data: key id, then the encryption context as canonical JSON.
fn context_aad(key_id: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = key_id.as_bytes().to_vec();
    if !context.is_empty() {
        aad.extend_from_slice(&serde_json::to_vec(context).unwrap_or_default());
    }
    aad
}

impl Kms {
    /// Loads keys and aliases from the catalog.
    pub fn open(
        catalog: Arc<dyn Catalog>,
        master_key: [u8; 32],
        region: &str,
        account: &str,
    ) -> Result<Kms, KmsError> {
        let state = match catalog.setting(STATE_SETTING)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                tracing::error!(error = %e, "kms state in the catalog is corrupt");
                KmsError::Internal(format!("kms state is corrupt: {e}"))
            })?,
            None => State::default(),
        };
        let kms = Kms {
            catalog,
            master: Aes256Gcm::new(&master_key.into()),
            region: region.to_string(),
            account: account.to_string(),
            state: Mutex::new(state),
        };
        // Refuse to start with a master key that does not open the stored keys.
        let first = kms.state.lock().keys.values().next().cloned();
        if let Some(k) = first {
            kms.material(&k).map_err(|_| {
                KmsError::Internal(
                    "the master key does not unwrap the stored KMS keys (wrong RUNNEL_MASTER_KEY or master.key?)".into(),
                )
            })?;
        }
        Ok(kms)
    }

    /// Opens the key service of a data dir: the master key from
    /// `RUNNEL_MASTER_KEY` or `<data_dir>/master.key` (created if missing).
    pub fn open_in(
        catalog: Arc<dyn Catalog>,
        data_dir: &std::path::Path,
        region: &str,
        account: &str,
    ) -> Result<Kms, String> {
        let master = crate::load_master_key(data_dir)?;
        Kms::open(catalog, master, region, account).map_err(|e| e.to_string())
    }

    pub fn key_arn(&self, id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account)
    }

    pub fn alias_arn(&self, alias: &str) -> String {
        format!("arn:aws:kms:{}:{}:{alias}", self.region, self.account)
    }

    fn persist(&self, state: &State) -> Result<(), KmsError> {
        let bytes = serde_json::to_vec(state)
            .map_err(|e| KmsError::Internal(format!("cannot encode kms state: {e}")))?;
        self.catalog.put_setting(STATE_SETTING, &bytes)?;
        Ok(())
    }

    /// Creates a key; with `alias`, also points that alias at it.
    pub(crate) fn create_key(
        &self,
        description: &str,
        aws_managed: bool,
    ) -> Result<KeyRecord, KmsError> {
        let id = uuid_v4();
        let material: [u8; KEY_MATERIAL_BYTES] = rand::random();
        let wrapped = hex::encode(seal(&self.master, &material, id.as_bytes())?);
        let rec = KeyRecord {
            id: id.clone(),
            description: description.to_string(),
            created_ms: now_ms(),
            enabled: true,
            wrapped,
            aws_managed,
        };
        let mut state = self.state.lock();
        let mut next = state.clone();
        next.keys.insert(id, rec.clone());
        self.persist(&next)?;
        *state = next;
        Ok(rec)
    }

    /// The default `alias/aws/kinesis` key, created on first use.
    fn default_kinesis_key(&self) -> Result<String, KmsError> {
        if let Some(a) = self.state.lock().aliases.get(KINESIS_DEFAULT_ALIAS) {
            return Ok(a.target.clone());
        }
        let key = self.create_key(
            "Default key that protects my Kinesis data when no other key is defined",
            true,
        )?;
        let mut state = self.state.lock();
        if let Some(a) = state.aliases.get(KINESIS_DEFAULT_ALIAS) {
            return Ok(a.target.clone()); // lost a race; the spare key stays unused
        }
        let mut next = state.clone();
        next.aliases.insert(
            KINESIS_DEFAULT_ALIAS.into(),
            AliasRecord {
                target: key.id.clone(),
                created_ms: now_ms(),
            },
        );
        self.persist(&next)?;
        *state = next;
        Ok(key.id)
    }

    /// Resolves a key id, key ARN, alias name or alias ARN.
    pub(crate) fn resolve_record(&self, key_ref: &str) -> Result<KeyRecord, KmsError> {
        let prefix = format!("arn:aws:kms:{}:{}:", self.region, self.account);
        let local = if let Some(rest) = key_ref.strip_prefix(&prefix) {
            rest
        } else if key_ref.starts_with("arn:") {
            return Err(KmsError::NotFound(format!(
                "Invalid arn {key_ref}: it names another account or region."
            )));
        } else {
            key_ref
        };
        let id = if let Some(id) = local.strip_prefix("key/") {
            id.to_string()
        } else if local.starts_with("alias/") {
            if local == KINESIS_DEFAULT_ALIAS {
                self.default_kinesis_key()?
            } else {
                let state = self.state.lock();
                state
                    .aliases
                    .get(local)
                    .map(|a| a.target.clone())
                    .ok_or_else(|| {
                        KmsError::NotFound(format!("Alias {} is not found.", self.alias_arn(local)))
                    })?
            }
        } else {
            local.to_string()
        };
        self.state.lock().keys.get(&id).cloned().ok_or_else(|| {
            KmsError::NotFound(format!("Key '{}' does not exist", self.key_arn(&id)))
        })
    }

    /// Resolves a key reference without requiring the key to be enabled.
    pub fn describe(&self, key_ref: &str) -> Result<KeyInfo, KmsError> {
        let k = self.resolve_record(key_ref)?;
        Ok(KeyInfo {
            arn: self.key_arn(&k.id),
            id: k.id,
            enabled: k.enabled,
        })
    }

    /// Fails with `Disabled` unless the key exists and is enabled.
    pub fn check_usable(&self, key_ref: &str) -> Result<KeyInfo, KmsError> {
        let info = self.describe(key_ref)?;
        if !info.enabled {
            return Err(KmsError::Disabled(format!("{} is disabled.", info.arn)));
        }
        Ok(info)
    }

    fn material(&self, k: &KeyRecord) -> Result<[u8; KEY_MATERIAL_BYTES], KmsError> {
        let sealed = hex::decode(&k.wrapped)
            .map_err(|_| KmsError::Internal("Internal service failure.".into()))?;
        let plain = open(&self.master, &sealed, k.id.as_bytes()).ok_or_else(|| {
            tracing::error!(key = %k.id, "key material does not unwrap under the master key");
            KmsError::Internal("Internal service failure.".into())
        })?;
        plain
            .try_into()
            .map_err(|_| KmsError::Internal("Internal service failure.".into()))
    }

    pub(crate) fn set_enabled(&self, key_ref: &str, enabled: bool) -> Result<(), KmsError> {
        let k = self.resolve_record(key_ref)?;
        let mut state = self.state.lock();
        let mut next = state.clone();
        if let Some(rec) = next.keys.get_mut(&k.id) {
            rec.enabled = enabled;
        }
        self.persist(&next)?;
        *state = next;
        Ok(())
    }

    pub(crate) fn create_alias(&self, alias: &str, target: &str) -> Result<(), KmsError> {
        let k = self.resolve_record(target)?;
        let mut state = self.state.lock();
        if state.aliases.contains_key(alias) {
            return Err(KmsError::AlreadyExists(format!(
                "An alias with the name {} already exists",
                self.alias_arn(alias)
            )));
        }
        let mut next = state.clone();
        next.aliases.insert(
            alias.to_string(),
            AliasRecord {
                target: k.id,
                created_ms: now_ms(),
            },
        );
        self.persist(&next)?;
        *state = next;
        Ok(())
    }

    /// Encrypts under an enabled key; returns the blob and the key ARN.
    pub fn encrypt(
        &self,
        key_ref: &str,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let k = self.resolve_record(key_ref)?;
        if !k.enabled {
            return Err(KmsError::Disabled(format!(
                "{} is disabled.",
                self.key_arn(&k.id)
            )));
        }
        let cipher = Aes256Gcm::new(&self.material(&k)?.into());
        let sealed = seal(&cipher, plaintext, &context_aad(&k.id, context))?;
        let mut blob = Vec::with_capacity(5 + k.id.len() + sealed.len());
        blob.extend_from_slice(BLOB_MAGIC);
        blob.push(k.id.len() as u8);
        blob.extend_from_slice(k.id.as_bytes());
        blob.extend_from_slice(&sealed);
        Ok((blob, self.key_arn(&k.id)))
    }

    /// Decrypts a blob from [`Kms::encrypt`]; returns plaintext and key ARN.
    pub fn decrypt(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let invalid = || KmsError::InvalidCiphertext(String::new());
        let rest = blob
            .strip_prefix(BLOB_MAGIC.as_slice())
            .ok_or_else(invalid)?;
        let (&len, rest) = rest.split_first().ok_or_else(invalid)?;
        if rest.len() < usize::from(len) {
            return Err(invalid());
        }
        let (id, sealed) = rest.split_at(usize::from(len));
        let id = std::str::from_utf8(id).map_err(|_| invalid())?;
        let k = self
            .state
            .lock()
            .keys
            .get(id)
            .cloned()
            .ok_or_else(invalid)?;
        if !k.enabled {
            return Err(KmsError::Disabled(format!(
                "{} is disabled.",
                self.key_arn(&k.id)
            )));
        }
        let cipher = Aes256Gcm::new(&self.material(&k)?.into());
        let plain = open(&cipher, sealed, &context_aad(&k.id, context)).ok_or_else(invalid)?;
        Ok((plain, self.key_arn(&k.id)))
    }

    /// A fresh data key: its plaintext and the blob that wraps it.
    pub fn generate_data_key(
        &self,
        key_ref: &str,
        bytes: usize,
        context: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, Vec<u8>, String), KmsError> {
        let plain: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
        let (blob, arn) = self.encrypt(key_ref, &plain, context)?;
        Ok((plain, blob, arn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms() -> (tempfile::TempDir, Kms) {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = runnel_catalog::RedbCatalog::open(&dir.path().join("c.redb")).expect("c");
        let kms = Kms::open(Arc::new(catalog), [7; 32], "us-east-1", "123").expect("kms");
        (dir, kms)
    }

    #[test]
    fn round_trips_and_refuses_tampering_and_disabled_keys() {
        let (_dir, kms) = kms();
        let k = kms.create_key("t", false).expect("key");
        let ctx = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let (blob, arn) = kms.encrypt(&k.id, b"hello", &ctx).expect("enc");
        assert_eq!(arn, kms.key_arn(&k.id));
        assert_eq!(kms.decrypt(&blob, &ctx).expect("dec").0, b"hello");
        assert!(matches!(
            kms.decrypt(&blob, &BTreeMap::new()),
            Err(KmsError::InvalidCiphertext(_))
        ));
        let mut bad = blob.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            kms.decrypt(&bad, &ctx),
            Err(KmsError::InvalidCiphertext(_))
        ));
        kms.set_enabled(&arn, false).expect("disable");
        assert!(matches!(
            kms.decrypt(&blob, &ctx),
            Err(KmsError::Disabled(_))
        ));
    }

    #[test]
    fn resolves_aliases_and_creates_the_default_one() {
        let (_dir, kms) = kms();
        let k = kms.create_key("", false).expect("key");
        kms.create_alias("alias/mine", &k.id).expect("alias");
        assert_eq!(kms.describe("alias/mine").expect("d").id, k.id);
        assert_eq!(
            kms.describe(&kms.alias_arn("alias/mine")).expect("d").id,
            k.id
        );
        assert!(matches!(
            kms.create_alias("alias/mine", &k.id),
            Err(KmsError::AlreadyExists(_))
        ));
        let d1 = kms.describe(KINESIS_DEFAULT_ALIAS).expect("default");
        let d2 = kms.describe(KINESIS_DEFAULT_ALIAS).expect("default");
        assert_eq!(d1, d2);
        assert!(matches!(kms.describe("nope"), Err(KmsError::NotFound(_))));
    }

    #[test]
    fn a_wrong_master_key_is_refused_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog: Arc<dyn Catalog> =
            Arc::new(runnel_catalog::RedbCatalog::open(&dir.path().join("c.redb")).expect("c"));
        let kms = Kms::open(catalog.clone(), [7; 32], "r", "a").expect("kms");
        kms.create_key("", false).expect("key");
        drop(kms);
        assert!(Kms::open(catalog, [8; 32], "r", "a").is_err());
    }
}
