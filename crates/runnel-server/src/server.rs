//! Starting and running the server: storage, service, listener, housekeeping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use runnel_log::{Log, LogConfig};
use runnel_streams::{StreamsConfig, StreamsService};
use runnel_types::{Clock, ManualClock, SystemClock};
use tokio::net::TcpListener;

use crate::config::{Durability, ServerConfig};
use crate::http::AppState;

pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    config: ServerConfig,
    /// Owns the services' background tasks (Firehose delivery).
    supervisor: runnel_runtime::Supervisor,
}

impl Server {
    /// Opens storage (recovering it if needed) and binds the listener.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let (clock, test_clock): (Arc<dyn Clock>, Option<ManualClock>) = if config.test_clock {
            let c = ManualClock::offset();
            (Arc::new(c.clone()), Some(c))
        } else {
            (Arc::new(SystemClock), None)
        };
        let log_config = LogConfig {
            dir: config.data_dir.join("log"),
            durability: match config.durability {
                Durability::Fsync => runnel_log::Durability::Fsync,
                Durability::None => runnel_log::Durability::None,
            },
            segment_bytes_max: config.segment_bytes,
            on_corruption: if config.on_corruption == "skip" {
                runnel_log::OnCorruption::Skip
            } else {
                runnel_log::OnCorruption::Refuse
            },
            ..LogConfig::default()
        };
        let started = std::time::Instant::now();
        let log_clock = clock.clone();
        let log = tokio::task::spawn_blocking(move || Log::open(log_config, log_clock))
            .await
            .context("log recovery task failed")?
            .context("cannot open the record log")?;
        let log = Arc::new(log);
        let catalog = crate::startup::open_catalog(&config, &log)?;
        let streams_config = StreamsConfig {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            stream_transition_ms: config.stream_transition_ms,
            account_shards_max: config.account_shards_max,
            on_demand_streams_max: config.on_demand_streams_max,
            quotas: runnel_streams::quota::parse_setting(&config.quotas)
                .map_err(anyhow::Error::msg)?,
        };
        let metrics = Arc::new(runnel_metrics::Registry::new(clock.clone()));
        let supervisor = runnel_runtime::Supervisor::new(clock.clone());
        let functions = Arc::new(config.function_registry()?);
        let streams = StreamsService::new(
            streams_config,
            clock,
            Arc::new(catalog),
            log.clone(),
            metrics.clone(),
        )
        .map_err(|e| anyhow::anyhow!("cannot load streams: {e}"))?;
        let kms = runnel_kms::Kms::open_in(
            streams.catalog(),
            &config.data_dir,
            &config.region,
            &config.account_id,
        )
        .map_err(|e| anyhow::anyhow!("cannot open the key service: {e}"))?;
        streams.attach_kms(Arc::new(kms));
        let streams = Arc::new(streams);
        let firehose = runnel_firehose::FirehoseService::open(
            runnel_firehose::FirehoseConfig {
                region: config.region.clone(),
                account_id: config.account_id.clone(),
                buckets_dir: config.data_dir.join("buckets"),
                transition_ms: config.stream_transition_ms,
            },
            streams.clone(),
            supervisor.clone(),
            functions,
        )
        .map_err(|e| anyhow::anyhow!("cannot open the Firehose service: {e}"))?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "storage opened"
        );
        let audit = if config.audit {
            let path = config
                .audit_file
                .clone()
                .unwrap_or_else(|| config.data_dir.join("audit").join("audit.log"));
            Some(Arc::new(
                crate::audit::AuditLog::open(
                    &path,
                    config.audit_file_bytes_max,
                    5,
                    config.audit_data_events,
                )
                .with_context(|| format!("cannot open the audit trail {}", path.display()))?,
            ))
        } else {
            None
        };
        let auth = match config.auth.as_str() {
            "enforced" => Some(Arc::new(
                crate::auth::AuthState::load(
                    config.principals_path(),
                    &config.region,
                    &config.account_id,
                    runnel_kms::load_master_key(&config.data_dir).map_err(anyhow::Error::msg)?,
                )
                .context("cannot load the principals file")?,
            )),
            _ => None,
        };
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.addr))?;
        let state = Arc::new(AppState {
            streams,
            firehose,
            log,
            request_body_bytes_max: config.request_body_bytes_max,
            request_body_timeout: Duration::from_millis(config.body_timeout_ms),
            test_clock,
            metrics,
            auth,
            audit,
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        });
        let tls = match (&config.tls_cert, &config.tls_key, config.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(crate::tls::acceptor(&crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: None,
            })?),
            (None, None, true) => {
                let files = crate::tls::self_signed(&config.data_dir)?;
                if let Some(ca) = &files.ca {
                    tracing::info!(ca = %ca.display(), "TLS with a development certificate: trust this CA (aws --ca-bundle, boto3 verify=)");
                    eprintln!(
                        "runnel: TLS CA certificate: {} (aws --ca-bundle {0})",
                        ca.display()
                    );
                }
                Some(crate::tls::acceptor(&files)?)
            }
            _ => None,
        };
        Ok(Server {
            listener,
            tls,
            state,
            config,
            supervisor,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(
            self.state.streams.clone(),
            self.config.clone(),
        ));
        let alarms = tokio::spawn(crate::alarms::run(
            self.state.metrics.clone(),
            self.config.alarms.clone(),
            Duration::from_millis(self.config.alarm_check_ms),
        ));
        let builder = Arc::new(crate::conn::builder(&self.config));
        let deadlines = crate::conn::Deadlines::of(&self.config);
        let connections = Arc::new(tokio::sync::Semaphore::new(self.config.connections_max));
        let per_address_max = self.config.connections_per_address();
        let per_address = crate::conn::PerAddress::new(per_address_max);
        let mut refused_address: u64 = 0;
        let mut refused: u64 = 0;
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Past the connection cap a new connection is closed at once.
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                refused += 1;
                if refused.is_power_of_two() {
                    tracing::warn!(%peer, limit = self.config.connections_max, refused, "connection limit reached; closing new connections");
                }
                drop(stream);
                continue;
            };
            // One address may not take every slot.
            let Some(address_permit) = per_address.try_acquire(peer.ip()) else {
                refused_address += 1;
                if refused_address.is_power_of_two() {
                    tracing::warn!(%peer, limit = per_address_max, refused = refused_address, "per-address connection limit reached; closing its new connections");
                }
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let state = self.state.clone();
            let builder = builder.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permits = (permit, address_permit);
                match tls {
                    None => crate::conn::serve_tcp(builder, stream, state, peer, deadlines).await,
                    Some(acceptor) => {
                        crate::conn::serve_tls(builder, acceptor, stream, state, peer, deadlines)
                            .await
                    }
                }
            });
        }
        housekeeping.abort();
        alarms.abort();
        tracing::info!("shutting down");
        self.supervisor.shutdown().await;
        Ok(())
    }
}

/// Finishes stream deletions and reclaims expired segments, forever.
async fn housekeeping(streams: Arc<StreamsService>, config: ServerConfig) {
    let tick = Duration::from_millis(config.stream_transition_ms.clamp(10, 1000));
    let retention_every = Duration::from_millis(config.retention_check_ms);
    let mut last_retention = tokio::time::Instant::now();
    let scale_every = Duration::from_millis(config.on_demand_scale_check_ms);
    let mut last_scale = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let svc = streams.clone();
        if last_scale.elapsed() >= scale_every {
            last_scale = tokio::time::Instant::now();
            let svc = streams.clone();
            match tokio::task::spawn_blocking(move || svc.scale_on_demand()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "on-demand scaling failed"),
                Err(e) => tracing::warn!(error = %e, "on-demand scaling task failed"),
            }
        }
        let run_retention = last_retention.elapsed() >= retention_every;
        let result = tokio::task::spawn_blocking(move || {
            if run_retention {
                svc.housekeeping().map(Some)
            } else {
                svc.finish_deletions().map(|_| None)
            }
        })
        .await;
        match result {
            Ok(Ok(Some(report))) => {
                last_retention = tokio::time::Instant::now();
                if report.segments_deleted > 0 {
                    tracing::info!(
                        segments = report.segments_deleted,
                        bytes = report.bytes_reclaimed,
                        "retention reclaimed segments"
                    );
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
            Err(e) => tracing::warn!(error = %e, "housekeeping task failed"),
        }
    }
}
