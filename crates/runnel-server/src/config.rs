use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fsync (group commit) before acknowledging a write. The default.
    #[default]
    Fsync,
    /// Acknowledge once written to the OS; a power cut can lose recent writes.
    None,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fsync" => Ok(Durability::Fsync),
            "none" => Ok(Durability::None),
            other => Err(format!(
                "durability must be 'fsync' or 'none', not '{other}'"
            )),
        }
    }
}

/// Everything `runnel serve` can be told. Every field has a default; the
/// commented `runnel.toml` in the repository root shows them all.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub region: String,
    pub account_id: String,
    pub durability: Durability,
    /// What start-up does when the record log holds damaged data (not a
    /// torn tail): "refuse" (default) to start, or "skip" it, keeping every
    /// record that verifies and reporting the loss on /health.
    pub on_corruption: String,
    /// Start even though the catalog is missing while the log holds data:
    /// that data belongs to no stream and retention deletes it.
    pub discard_orphaned_log_data: bool,
    /// How long streams stay CREATING / UPDATING / DELETING.
    pub stream_transition_ms: u64,
    /// Size at which a log segment is sealed and a new one started.
    pub segment_bytes: u64,
    /// How often expired segments are looked for.
    pub retention_check_ms: u64,
    pub account_shards_max: u32,
    pub on_demand_streams_max: u32,
    /// Per-shard throughput quotas: "aws" (AWS's rates), "off", or a multiplier
    /// of AWS's rates such as "2.5". A stream tag `runnel:quotas` overrides it.
    pub quotas: String,
    /// How often on-demand streams are checked for scaling.
    pub on_demand_scale_check_ms: u64,
    /// Enables `/_runnel/test/*` (clock control). Never in production.
    pub test_clock: bool,
    /// Largest request body accepted, checked before it is read.
    pub request_body_bytes_max: usize,
    pub log_json: bool,
    /// "open": any credentials are accepted (loopback addresses only);
    /// "enforced": SigV4 from a known principal and an allowing policy.
    pub auth: String,
    /// The principals file (default: `<data_dir>/principals.json`).
    pub principals_file: Option<PathBuf>,
    /// PEM certificate chain and private key: serve HTTPS (h2 and http/1.1 by ALPN).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Generate (once) a development CA and certificate under `<data_dir>/tls/`.
    pub tls_self_signed: bool,
    /// Write the audit trail (CloudTrail-format JSON lines).
    pub audit: bool,
    /// Also record data events (PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard).
    pub audit_data_events: bool,
    /// Audit file (default `<data_dir>/audit/audit.log`), rotated at `audit_file_bytes_max`.
    pub audit_file: Option<PathBuf>,
    pub audit_file_bytes_max: u64,
    /// Connections served at once; more are closed as they arrive.
    pub connections_max: usize,
    /// Connections one client address may hold at once; 0 means
    /// max(64, connections_max / 8).
    pub connections_per_address_max: usize,
    /// A new plain-TCP connection must send its first byte within this time.
    pub first_byte_timeout_ms: u64,
    /// A TLS handshake must complete within this time of the connection.
    pub tls_handshake_timeout_ms: u64,
    /// Request headers must arrive within this time: for the first request,
    /// from the connection's start (after the TLS handshake).
    pub header_timeout_ms: u64,
    /// A request body must arrive whole within this time of its headers.
    pub body_timeout_ms: u64,
    /// A connection with no request in progress (HTTP/1.1 keep-alive, or
    /// HTTP/2 with no open stream) is closed after this time.
    pub idle_timeout_ms: u64,
    /// HTTP/2 PING interval on connections with open streams; a peer that
    /// does not answer within the same time is disconnected.
    pub h2_keepalive_ms: u64,
    /// How often alarms are evaluated.
    pub alarm_check_ms: u64,
    /// Threshold alarms on any metric (see `alarms.rs`).
    pub alarms: Vec<crate::alarms::AlarmConfig>,
    /// Lambda function (ARN, partial ARN or name, optionally qualified) →
    /// the HTTP(S) URL that stands in for it; `--function ARN=URL` adds more.
    pub functions: std::collections::BTreeMap<String, String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 4567)),
            data_dir: PathBuf::from("./runnel-data"),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            durability: Durability::Fsync,
            on_corruption: "refuse".into(),
            discard_orphaned_log_data: false,
            stream_transition_ms: 500,
            segment_bytes: 64 * 1024 * 1024,
            retention_check_ms: 60_000,
            account_shards_max: runnel_types::limits::ACCOUNT_SHARDS_MAX_DEFAULT,
            on_demand_streams_max: runnel_types::limits::ON_DEMAND_STREAM_COUNT_MAX_DEFAULT,
            quotas: "aws".into(),
            on_demand_scale_check_ms: 60_000,
            test_clock: false,
            request_body_bytes_max: runnel_types::limits::REQUEST_BODY_BYTES_MAX,
            log_json: false,
            auth: "open".into(),
            principals_file: None,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            audit: true,
            audit_data_events: false,
            audit_file: None,
            audit_file_bytes_max: 64 * 1024 * 1024,
            connections_max: 4096,
            connections_per_address_max: 0,
            first_byte_timeout_ms: 10_000,
            tls_handshake_timeout_ms: 10_000,
            header_timeout_ms: 30_000,
            body_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            h2_keepalive_ms: 30_000,
            alarm_check_ms: 10_000,
            alarms: Vec::new(),
            functions: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServerConfig {
    pub fn principals_path(&self) -> PathBuf {
        self.principals_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("principals.json"))
    }

    /// The per-address connection share in force.
    pub fn connections_per_address(&self) -> usize {
        match self.connections_per_address_max {
            0 => (self.connections_max / 8).max(64).min(self.connections_max),
            n => n,
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Adds a `--function ARN=URL` flag's entry (a flag replaces a config
    /// entry spelled the same way).
    pub fn add_function_flag(&mut self, flag: &str) -> Result<(), ConfigError> {
        let (f, u) = runnel_runtime::functions::parse_flag(flag)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.functions.insert(f, u);
        Ok(())
    }

    /// The function registry the services share, checked.
    pub fn function_registry(&self) -> Result<runnel_runtime::FunctionRegistry, ConfigError> {
        runnel_runtime::FunctionRegistry::from_entries(
            &self.region,
            &self.account_id,
            self.functions.iter().map(|(f, u)| (f.as_str(), u.as_str())),
        )
        .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// Checks relations between settings; the message says what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.on_corruption.as_str(), "refuse" | "skip") {
            return Err(ConfigError::Invalid(format!(
                "on_corruption must be 'refuse' or 'skip', got '{}'",
                self.on_corruption
            )));
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid(format!(
                "account_id must be 12 digits, got '{}'",
                self.account_id
            )));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ConfigError::Invalid(format!(
                "region '{}' is not a region name",
                self.region
            )));
        }
        if self.segment_bytes < 64 * 1024 {
            return Err(ConfigError::Invalid(
                "segment_bytes must be at least 65536".into(),
            ));
        }
        if self.request_body_bytes_max < 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "request_body_bytes_max must be at least 1 MiB".into(),
            ));
        }
        runnel_streams::quota::parse_setting(&self.quotas).map_err(ConfigError::Invalid)?;
        if self.on_demand_scale_check_ms == 0 {
            return Err(ConfigError::Invalid(
                "on_demand_scale_check_ms must be positive".into(),
            ));
        }
        match self.auth.as_str() {
            "enforced" => {}
            "open" if self.addr.ip().is_loopback() => {}
            "open" => {
                return Err(ConfigError::Invalid(format!(
                    "refusing to listen on {} without authentication: anyone who can reach it could read and delete streams. \
                     Either bind a loopback address (--addr 127.0.0.1:4567) or set auth = \"enforced\" (--auth enforced) \
                     and create credentials with `runnel auth add NAME --policy policy.json`.",
                    self.addr
                )))
            }
            other => return Err(ConfigError::Invalid(format!("auth must be \"open\" or \"enforced\", not \"{other}\""))),
        }
        if self.connections_max == 0 {
            return Err(ConfigError::Invalid(
                "connections_max must be positive".into(),
            ));
        }
        for (name, ms) in [
            ("first_byte_timeout_ms", self.first_byte_timeout_ms),
            ("tls_handshake_timeout_ms", self.tls_handshake_timeout_ms),
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("h2_keepalive_ms", self.h2_keepalive_ms),
        ] {
            if ms == 0 {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be positive: without it an idle client holds a connection forever"
                )));
            }
        }
        if self.connections_per_address_max > self.connections_max {
            return Err(ConfigError::Invalid(format!(
                "connections_per_address_max ({}) cannot exceed connections_max ({})",
                self.connections_per_address_max, self.connections_max
            )));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together: give both, or neither".into(),
            ));
        }
        if self.tls_self_signed && self.tls_cert.is_some() {
            return Err(ConfigError::Invalid(
                "tls_self_signed and tls_cert/tls_key exclude each other".into(),
            ));
        }
        for a in &self.alarms {
            a.validate().map_err(ConfigError::Invalid)?;
        }
        if self.alarm_check_ms == 0 {
            return Err(ConfigError::Invalid(
                "alarm_check_ms must be positive".into(),
            ));
        }
        self.function_registry()?;
        if self.retention_check_ms == 0 {
            return Err(ConfigError::Invalid(
                "retention_check_ms must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../../runnel.toml");
        let cfg: ServerConfig = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        let default = ServerConfig::default();
        assert_eq!(cfg.addr, default.addr);
    }

    #[test]
    fn functions_from_table_and_flags() {
        let mut cfg: ServerConfig = toml::from_str(
            "account_id = \"123456789012\"\n[functions]\n\"arn:aws:lambda:us-east-1:123456789012:function:a\" = \"http://127.0.0.1:9000/a\"\n",
        )
        .unwrap();
        cfg.add_function_flag("b:live=https://fn.example/b?x=1")
            .unwrap();
        cfg.validate().unwrap();
        let registry = cfg.function_registry().unwrap();
        assert_eq!(registry.len(), 2);
        assert_eq!(registry.resolve("a").unwrap().1.path(), "/a");
        assert_eq!(
            registry
                .resolve("arn:aws:lambda:us-east-1:123456789012:function:b:live")
                .unwrap()
                .1
                .host(),
            Some("fn.example")
        );
        assert_eq!(
            cfg.add_function_flag("nourl").unwrap_err().to_string(),
            "invalid configuration: --function 'nourl' must be ARN=URL"
        );
        cfg.add_function_flag("a=http://127.0.0.1:9000/again")
            .unwrap();
        assert_eq!(
            cfg.validate().unwrap_err().to_string(),
            "invalid configuration: function arn:aws:lambda:us-east-1:123456789012:function:a is named more than once"
        );
    }

    #[test]
    fn unknown_fields_rejected() {
        assert!(toml::from_str::<ServerConfig>("adr = \"1.2.3.4:5\"").is_err());
    }

    #[test]
    fn bad_values_explained() {
        let cfg = ServerConfig {
            account_id: "12".into(),
            ..Default::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("12 digits"));
    }
}
