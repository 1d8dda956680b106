//! The principals file: who may call, with which secret and policies.
//!
//! JSON, kept with owner-only permissions (0600). SigV4 needs the secret
//! itself on the server, so secrets are stored encrypted (`secret_enc`:
//! AES-256-GCM under the server's master key, the access key as associated
//! data) and decrypted only in memory. Managed with `runnel auth
//! add|list|remove`. Secrets never appear in logs or API output; `list`
//! prints access keys only. A hand-written plaintext `secret` is accepted.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Principal {
    pub name: String,
    pub access_key: String,
    /// Plaintext secret: only in memory after `decrypt_secrets`, or in
    /// hand-written files.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub secret: String,
    /// `hex(nonce ‖ AES-256-GCM(master key, secret))`, AAD = access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_enc: Option<String>,
    /// Present for temporary credentials: the session token to require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// IAM policy documents attached to the principal.
    #[serde(default)]
    pub policies: Vec<Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PrincipalsFile {
    #[serde(default)]
    pub principals: Vec<Principal>,
}

#[derive(Debug, thiserror::Error)]
pub enum PrincipalsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid principals file: {message}")]
    Parse { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl PrincipalsFile {
    pub fn load(path: &Path) -> Result<Self, PrincipalsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(PrincipalsFile::default())
            }
            Err(source) => {
                return Err(PrincipalsError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let file: PrincipalsFile =
            serde_json::from_str(&text).map_err(|e| PrincipalsError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        for p in &file.principals {
            for doc in &p.policies {
                crate::policy::validate(doc)
                    .map_err(|e| PrincipalsError::Invalid(format!("principal {}: {e}", p.name)))?;
            }
        }
        Ok(file)
    }

    /// Writes atomically (temp file + rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), PrincipalsError> {
        let err = |source| PrincipalsError::Write {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| PrincipalsError::Invalid(e.to_string()))?;
        {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(err)?;
            f.write_all(text.as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, path).map_err(err)
    }

    pub fn find(&self, access_key: &str) -> Option<&Principal> {
        self.principals.iter().find(|p| p.access_key == access_key)
    }

    /// Adds a principal with fresh credentials; returns it.
    pub fn add(&mut self, name: &str, policies: Vec<Value>) -> Result<Principal, PrincipalsError> {
        if self.principals.iter().any(|p| p.name == name) {
            return Err(PrincipalsError::Invalid(format!(
                "a principal named {name} exists already"
            )));
        }
        for doc in &policies {
            crate::policy::validate(doc).map_err(|e| PrincipalsError::Invalid(e.to_string()))?;
        }
        let p = Principal {
            name: name.to_string(),
            access_key: random_string("AKIA", 16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
            secret: random_string(
                "",
                40,
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            ),
            secret_enc: None,
            session_token: None,
            policies,
        };
        self.principals.push(p.clone());
        Ok(p)
    }
}

impl PrincipalsFile {
    /// Encrypts every plaintext secret under `master` (before saving).
    pub fn encrypt_secrets(&mut self, master: &[u8; 32]) -> Result<(), PrincipalsError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let cipher = aes_gcm::Aes256Gcm::new(master.into());
        for p in &mut self.principals {
            if p.secret.is_empty() {
                continue;
            }
            let nonce: [u8; 12] = rand::random();
            let sealed = cipher
                .encrypt(
                    (&nonce).into(),
                    Payload {
                        msg: p.secret.as_bytes(),
                        aad: p.access_key.as_bytes(),
                    },
                )
                .map_err(|_| PrincipalsError::Invalid("cannot encrypt a secret".into()))?;
            let mut out = nonce.to_vec();
            out.extend_from_slice(&sealed);
            p.secret_enc = Some(hex::encode(out));
            p.secret.clear();
        }
        Ok(())
    }

    /// Decrypts every `secret_enc` into `secret` (in memory only).
    pub fn decrypt_secrets(&mut self, master: &[u8; 32]) -> Result<(), PrincipalsError> {
        use aes_gcm::aead::{Aead, KeyInit, Payload};
        let cipher = aes_gcm::Aes256Gcm::new(master.into());
        for p in &mut self.principals {
            let Some(enc) = &p.secret_enc else { continue };
            let bytes = hex::decode(enc).map_err(|_| {
                PrincipalsError::Invalid(format!("principal {}: secret_enc is not hex", p.name))
            })?;
            if bytes.len() < 12 + 16 {
                return Err(PrincipalsError::Invalid(format!(
                    "principal {}: secret_enc is too short",
                    p.name
                )));
            }
            let (nonce, sealed) = bytes.split_at(12);
            let plain = cipher
                .decrypt(nonce.into(), Payload { msg: sealed, aad: p.access_key.as_bytes() })
                .map_err(|_| {
                    PrincipalsError::Invalid(format!(
                        "principal {}: the master key does not decrypt its secret (wrong RUNNEL_MASTER_KEY or master.key?)",
                        p.name
                    ))
                })?;
            p.secret = String::from_utf8(plain).map_err(|_| {
                PrincipalsError::Invalid(format!("principal {}: secret is not UTF-8", p.name))
            })?;
        }
        Ok(())
    }
}

fn random_string(prefix: &str, len: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    let mut s = prefix.to_string();
    for _ in 0..len {
        s.push(alphabet[rng.gen_range(0..alphabet.len())] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_owner_only_mode() {
        let dir = std::env::temp_dir().join(format!("runnel-principals-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("principals.json");
        let mut f = PrincipalsFile::default();
        let p = f.add("reader", vec![serde_json::json!({"Statement": [{"Effect": "Allow", "Action": "kinesis:Get*", "Resource": "*"}]})]).unwrap();
        assert!(p.access_key.starts_with("AKIA") && p.access_key.len() == 20);
        assert_eq!(p.secret.len(), 40);
        assert!(f.add("reader", vec![]).is_err());
        f.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(PrincipalsFile::load(&path).unwrap(), f);
        // Encrypted at rest, decrypted in memory; a wrong master key fails.
        let master = [7u8; 32];
        let plain = f.clone();
        f.encrypt_secrets(&master).unwrap();
        f.save(&path).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&p.secret));
        let mut loaded = PrincipalsFile::load(&path).unwrap();
        assert!(loaded.clone().decrypt_secrets(&[8u8; 32]).is_err());
        loaded.decrypt_secrets(&master).unwrap();
        assert_eq!(loaded.principals[0].secret, plain.principals[0].secret);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
