//! `TrentService.*` operations over AWS JSON 1.1: decode, run, encode.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::store::{KeyRecord, Kms};
use crate::KmsError;

const KEY_ID_CHARS_MAX: usize = 2048;
const PLAINTEXT_BYTES_MAX: usize = 4096;
const DATA_KEY_BYTES_MAX: usize = 1024;
const CIPHERTEXT_BYTES_MAX: usize = 6144;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Input {
    key_id: Option<String>,
    description: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    number_of_bytes: Option<i64>,
    plaintext: Option<String>,
    ciphertext_blob: Option<String>,
    alias_name: Option<String>,
    target_key_id: Option<String>,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
}

fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, KmsError> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(KmsError::Validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

fn key_id(input: &Input) -> Result<&str, KmsError> {
    let id = required("keyId", &input.key_id)?;
    if id.len() > KEY_ID_CHARS_MAX {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length less than or equal to {KEY_ID_CHARS_MAX}"
        )));
    }
    Ok(id)
}

fn blob(field: &str, value: &Option<String>, max: usize) -> Result<Vec<u8>, KmsError> {
    let text = required(field, value)?;
    let bytes = B64
        .decode(text)
        .map_err(|_| KmsError::Serialization(format!("'{field}' is not valid base64.")))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length between 1 and {max}"
        )));
    }
    Ok(bytes)
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

impl Kms {
    fn metadata(&self, k: &KeyRecord) -> Value {
        json!({
            "AWSAccountId": self.account,
            "KeyId": k.id,
            "Arn": self.key_arn(&k.id),
            "CreationDate": seconds(k.created_ms),
            "Enabled": k.enabled,
            "Description": k.description,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": if k.enabled { "Enabled" } else { "Disabled" },
            "Origin": "AWS_KMS",
            "KeyManager": if k.aws_managed { "AWS" } else { "CUSTOMER" },
            "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT",
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"],
            "MultiRegion": false,
        })
    }

    /// Runs one operation; `body` is the JSON request. Blocks on the catalog
    /// when it changes keys or aliases.
    pub fn handle(&self, operation: &str, body: &[u8]) -> Result<Value, KmsError> {
        let input: Input = if body.is_empty() {
            Input::default()
        } else {
            serde_json::from_slice(body).map_err(|e| KmsError::Serialization(e.to_string()))?
        };
        match operation {
            "CreateKey" => self.op_create_key(&input),
            "DescribeKey" => {
                let k = self.resolve_record(key_id(&input)?)?;
                Ok(json!({ "KeyMetadata": self.metadata(&k) }))
            }
            "ListKeys" => {
                let state = self.state.lock();
                let keys: Vec<Value> = state
                    .keys
                    .keys()
                    .map(|id| json!({ "KeyId": id, "KeyArn": self.key_arn(id) }))
                    .collect();
                Ok(json!({ "Keys": keys, "Truncated": false }))
            }
            "EnableKey" | "DisableKey" => {
                self.set_enabled(key_id(&input)?, operation == "EnableKey")?;
                Ok(json!({}))
            }
            "CreateAlias" => {
                let alias = required("aliasName", &input.alias_name)?;
                let target = required("targetKeyId", &input.target_key_id)?;
                let name_ok = alias.len() <= 256
                    && alias.len() > "alias/".len()
                    && alias.starts_with("alias/")
                    && alias["alias/".len()..]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
                if !name_ok {
                    return Err(KmsError::Validation(format!(
                        "1 validation error detected: Value '{alias}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$"
                    )));
                }
                if alias.starts_with("alias/aws/") {
                    return Err(KmsError::Validation(format!(
                        "Alias {alias} is reserved for AWS-managed keys."
                    )));
                }
                self.create_alias(alias, target)?;
                Ok(json!({}))
            }
            "ListAliases" => self.op_list_aliases(&input),
            "Encrypt" => {
                let id = key_id(&input)?;
                let plain = blob("plaintext", &input.plaintext, PLAINTEXT_BYTES_MAX)?;
                let (ct, arn) = self.encrypt(id, &plain, &input.encryption_context)?;
                Ok(json!({
                    "CiphertextBlob": B64.encode(ct),
                    "KeyId": arn,
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                }))
            }
            "Decrypt" => {
                let ct = blob(
                    "ciphertextBlob",
                    &input.ciphertext_blob,
                    CIPHERTEXT_BYTES_MAX,
                )?;
                let (plain, arn) = self.decrypt(&ct, &input.encryption_context)?;
                if let Some(want) = input.key_id.as_deref() {
                    if self.describe(want)?.arn != arn {
                        return Err(KmsError::IncorrectKey(
                            "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                        ));
                    }
                }
                Ok(json!({
                    "Plaintext": B64.encode(plain),
                    "KeyId": arn,
                    "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                }))
            }
            "GenerateDataKey" => {
                let id = key_id(&input)?;
                let bytes = match (input.key_spec.as_deref(), input.number_of_bytes) {
                    (Some(_), Some(_)) => {
                        return Err(KmsError::Validation(
                            "Please specify either number of bytes or key spec.".into(),
                        ))
                    }
                    (Some("AES_256"), None) => 32,
                    (Some("AES_128"), None) => 16,
                    (Some(other), None) => {
                        return Err(KmsError::Validation(format!(
                            "1 validation error detected: Value '{other}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]"
                        )))
                    }
                    (None, Some(n)) if (1..=DATA_KEY_BYTES_MAX as i64).contains(&n) => n as usize,
                    (None, Some(_)) => {
                        return Err(KmsError::Validation(format!(
                            "1 validation error detected: Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and {DATA_KEY_BYTES_MAX}"
                        )))
                    }
                    (None, None) => {
                        return Err(KmsError::Validation(
                            "Please specify either number of bytes or key spec.".into(),
                        ))
                    }
                };
                let (plain, ct, arn) =
                    self.generate_data_key(id, bytes, &input.encryption_context)?;
                Ok(json!({
                    "Plaintext": B64.encode(plain),
                    "CiphertextBlob": B64.encode(ct),
                    "KeyId": arn,
                }))
            }
            other => Err(KmsError::UnsupportedOperation(format!(
                "Operation {other} is not supported by this server."
            ))),
        }
    }

    fn op_create_key(&self, input: &Input) -> Result<Value, KmsError> {
        if let Some(u) = input
            .key_usage
            .as_deref()
            .filter(|u| *u != "ENCRYPT_DECRYPT")
        {
            return Err(KmsError::UnsupportedOperation(format!(
                "KeyUsage {u} is not supported by this server; only ENCRYPT_DECRYPT."
            )));
        }
        let spec = input
            .key_spec
            .as_deref()
            .or(input.customer_master_key_spec.as_deref());
        if let Some(s) = spec.filter(|s| *s != "SYMMETRIC_DEFAULT") {
            return Err(KmsError::UnsupportedOperation(format!(
                "KeySpec {s} is not supported by this server; only SYMMETRIC_DEFAULT."
            )));
        }
        let description = input.description.as_deref().unwrap_or_default();
        if description.len() > 8192 {
            return Err(KmsError::Validation(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192".into(),
            ));
        }
        let k = self.create_key(description, false)?;
        tracing::info!(key = %k.id, "kms key created");
        Ok(json!({ "KeyMetadata": self.metadata(&k) }))
    }

    fn op_list_aliases(&self, input: &Input) -> Result<Value, KmsError> {
        let only = match input.key_id.as_deref() {
            Some(k) => Some(self.resolve_record(k)?.id),
            None => None,
        };
        let state = self.state.lock();
        let aliases: Vec<Value> = state
            .aliases
            .iter()
            .filter(|(_, a)| only.as_ref().is_none_or(|k| *k == a.target))
            .map(|(name, a)| {
                json!({
                    "AliasName": name,
                    "AliasArn": self.alias_arn(name),
                    "TargetKeyId": a.target,
                    "CreationDate": seconds(a.created_ms),
                    "LastUpdatedDate": seconds(a.created_ms),
                })
            })
            .collect();
        Ok(json!({ "Aliases": aliases, "Truncated": false }))
    }
}
