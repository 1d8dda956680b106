//! Start-up checks between the catalog and the record log: a catalog that
//! cannot be opened is reported (never a panic), a lost catalog next to a
//! log full of data refuses to start, and stream uids are never reused.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use runnel_catalog::{Catalog, RedbCatalog};
use runnel_log::Log;

use crate::config::ServerConfig;

/// Runs `f`, turning a panic inside it (redb asserts on some damaged pages)
/// into an error carrying the panic message, without printing it.
fn no_panic<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    let message: Arc<Mutex<Option<String>>> = Arc::default();
    let sink = message.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut m) = sink.lock() {
            *m = Some(format!("{text}{at}"));
        }
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    match result {
        Ok(r) => r,
        Err(_) => {
            let m = message.lock().ok().and_then(|m| m.clone());
            Err(format!(
                "the catalog storage engine failed: {}",
                m.unwrap_or_else(|| "panic".into())
            ))
        }
    }
}

fn damaged_help(path: &Path) -> String {
    format!(
        "The catalog file {p} is damaged. Restore it from a backup, or move it aside \
         (mv {p} {p}.damaged) and start again: without a catalog the stream \
         definitions are lost, and start-up then asks for --discard-orphaned-log-data \
         before it lets retention delete their records.",
        p = path.display()
    )
}

/// Opens the catalog, checks it against the log, and makes sure the next
/// stream uid is above every uid the log holds data for.
pub fn open_catalog(config: &ServerConfig, log: &Log) -> anyhow::Result<RedbCatalog> {
    let path = config.data_dir.join("catalog.redb");
    let existed = path.exists();
    let log_uids = log.stream_uids();
    if !existed && !log_uids.is_empty() && !config.discard_orphaned_log_data {
        return Err(anyhow!(
            "the catalog {} is missing but the record log in {} holds records of {} \
             stream(s) (uids {:?}). Refusing to start: with no catalog those records belong \
             to no stream and retention would delete them. Restore catalog.redb from a \
             backup, or start with --discard-orphaned-log-data to give them up.",
            path.display(),
            config.data_dir.join("log").display(),
            log_uids.len(),
            log_uids
        ));
    }
    let catalog = no_panic(|| {
        let c = RedbCatalog::open(&path).map_err(|e| e.to_string())?;
        // Reads every record once, so damage shows up here, not later.
        let streams = c.load_streams().map_err(|e| e.to_string())?;
        Ok((c, streams))
    });
    let (catalog, streams) =
        catalog.map_err(|e| anyhow!("cannot open the catalog: {e}. {}", damaged_help(&path)))?;
    if !existed && !log_uids.is_empty() {
        tracing::warn!(
            uids = ?log_uids,
            "catalog missing: records of unknown streams will be deleted by retention"
        );
    }
    // Never hand out a uid the log (or the catalog) already used.
    let max_used = log_uids
        .iter()
        .copied()
        .chain(streams.iter().map(|s| s.uid))
        .max();
    if let Some(max_used) = max_used {
        loop {
            let uid = no_panic(|| catalog.next_stream_uid().map_err(|e| e.to_string()))
                .map_err(|e| anyhow!("cannot open the catalog: {e}. {}", damaged_help(&path)))?;
            if uid > max_used {
                break;
            }
        }
    }
    Ok(catalog)
}
