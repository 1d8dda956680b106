//! One owner for every long-running task of the in-process services.
//!
//! A task is registered by name with a factory that makes a fresh future for
//! each attempt. The supervisor runs the attempt on its own tokio task, so
//! a panic is caught at the `JoinHandle` like an error return. A failed
//! attempt is restarted after an exponential backoff (`backoff_base_ms`
//! doubling up to `backoff_max_ms`); an attempt that ran for at least
//! `stable_after_ms` counts as a recovery, so the next failure starts again
//! from the base delay. After `restarts_max` consecutive failures (if set)
//! the task is left `Failed`.
//!
//! An attempt that returns `Ok(())` has finished its work: it is `Stopped`
//! and not restarted. Stopping (one task, or all at shutdown) cancels the
//! task's [`CancellationToken`]; the task should return soon after, and is
//! aborted if it has not within `shutdown_grace_ms`.
//!
//! [`Supervisor::health`] is what the supervisor itself saw, never a
//! constant: services derive their status (Firehose's DeliveryStreamStatus
//! and FailureDescription, `/health`) from it.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use runnel_types::Clock;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest error text kept per task; longer texts are cut at a char boundary.
pub const LAST_ERROR_CHARS_MAX: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// An attempt that ran this long resets the backoff to the base delay.
    pub stable_after_ms: u64,
    /// Consecutive failures after which the task is left `Failed`; `None`
    /// restarts forever.
    pub restarts_max: Option<u32>,
    /// How long a stopped task has to return before it is aborted.
    pub shutdown_grace_ms: u64,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff_base_ms: 100,
            backoff_max_ms: 30_000,
            stable_after_ms: 60_000,
            restarts_max: None,
            shutdown_grace_ms: 5_000,
        }
    }
}

impl RestartPolicy {
    /// The wait before restart number `consecutive` (0 for the first).
    pub fn backoff_ms(&self, consecutive: u32) -> u64 {
        let factor = 1u64.checked_shl(consecutive.min(63)).unwrap_or(u64::MAX);
        self.backoff_base_ms
            .saturating_mul(factor)
            .min(self.backoff_max_ms)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// An attempt was started and has not reported ready yet.
    Starting,
    Running,
    /// The last attempt failed; the next starts at `until`.
    Backoff {
        until: Instant,
    },
    /// Gave up after `restarts_max` consecutive failures.
    Failed,
    /// Stopped by request, at shutdown, or finished (returned `Ok`).
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskHealth {
    pub state: TaskState,
    /// Attempts restarted after a failure, over the task's life.
    pub restarts: u64,
    /// Failures since the last stable attempt.
    pub consecutive_failures: u32,
    /// The last failure's text (`panicked: …` for a panic).
    pub last_error: Option<String>,
    /// When the last failure happened, in ms since the epoch (the
    /// supervisor's clock).
    pub last_error_ms: Option<u64>,
}

impl TaskHealth {
    fn new() -> Self {
        TaskHealth {
            state: TaskState::Starting,
            restarts: 0,
            consecutive_failures: 0,
            last_error: None,
            last_error_ms: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SupervisorError {
    #[error("a task named {0} is already registered")]
    Duplicate(String),
    #[error("no task named {0}")]
    UnknownTask(String),
    #[error("the supervisor is shutting down")]
    ShuttingDown,
}

/// What a running attempt gets: its stop signal and a way to say it is ready.
#[derive(Clone)]
pub struct TaskContext {
    name: Arc<str>,
    cancel: CancellationToken,
    health: Arc<Mutex<TaskHealth>>,
}

impl TaskContext {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cancelled when the task is stopped or the supervisor shuts down.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Moves the task from `Starting` to `Running` (for tasks registered
    /// with [`TaskSpec::reports_ready`]); harmless otherwise.
    pub fn ready(&self) {
        let mut h = self.health.lock();
        if h.state == TaskState::Starting {
            h.state = TaskState::Running;
        }
    }
}

/// How one task is run.
#[derive(Clone, Debug, Default)]
pub struct TaskSpec {
    pub policy: RestartPolicy,
    /// The task calls [`TaskContext::ready`] when it is ready; until then it
    /// is `Starting`. Otherwise it is `Running` as soon as it is spawned.
    pub reports_ready: bool,
}

struct Entry {
    health: Arc<Mutex<TaskHealth>>,
    cancel: CancellationToken,
    driver: Option<JoinHandle<()>>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    root: CancellationToken,
    tasks: Mutex<BTreeMap<String, Entry>>,
}

/// Dropping the last handle stops every task, as `shutdown` does, but
/// without waiting for them.
impl Drop for Inner {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

/// Cheap to clone: clones share the tasks.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Supervisor {
            inner: Arc::new(Inner {
                clock,
                root: CancellationToken::new(),
                tasks: Mutex::default(),
            }),
        }
    }

    /// Registers and starts a task. `factory` is called for every attempt.
    pub fn spawn<F, Fut, E>(
        &self,
        name: &str,
        spec: TaskSpec,
        factory: F,
    ) -> Result<(), SupervisorError>
    where
        F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let mut tasks = self.inner.tasks.lock();
        if self.inner.root.is_cancelled() {
            return Err(SupervisorError::ShuttingDown);
        }
        if tasks.contains_key(name) {
            return Err(SupervisorError::Duplicate(name.to_owned()));
        }
        let health = Arc::new(Mutex::new(TaskHealth::new()));
        let cancel = self.inner.root.child_token();
        let ctx = TaskContext {
            name: Arc::from(name),
            cancel: cancel.clone(),
            health: health.clone(),
        };
        let driver = tokio::spawn(drive(
            ctx,
            spec,
            self.inner.clock.clone(),
            Arc::new(factory),
        ));
        tasks.insert(
            name.to_owned(),
            Entry {
                health,
                cancel,
                driver: Some(driver),
            },
        );
        Ok(())
    }

    /// Stops a task and waits for it; it stays listed as `Stopped`.
    pub async fn stop(&self, name: &str) -> Result<(), SupervisorError> {
        let driver = {
            let mut tasks = self.inner.tasks.lock();
            let entry = tasks
                .get_mut(name)
                .ok_or_else(|| SupervisorError::UnknownTask(name.to_owned()))?;
            entry.cancel.cancel();
            entry.driver.take()
        };
        if let Some(d) = driver {
            let _ = d.await;
        }
        Ok(())
    }

    /// Stops a task, waits for it, and forgets it.
    pub async fn remove(&self, name: &str) -> Result<(), SupervisorError> {
        self.stop(name).await?;
        self.inner.tasks.lock().remove(name);
        Ok(())
    }

    pub fn health(&self, name: &str) -> Option<TaskHealth> {
        let tasks = self.inner.tasks.lock();
        tasks.get(name).map(|e| e.health.lock().clone())
    }

    /// Every registered task's health, by name.
    pub fn health_all(&self) -> BTreeMap<String, TaskHealth> {
        let tasks = self.inner.tasks.lock();
        tasks
            .iter()
            .map(|(n, e)| (n.clone(), e.health.lock().clone()))
            .collect()
    }

    /// Stops every task and waits for all of them; later `spawn`s fail.
    pub async fn shutdown(&self) {
        let drivers: Vec<JoinHandle<()>> = {
            let mut tasks = self.inner.tasks.lock();
            self.inner.root.cancel();
            tasks.values_mut().filter_map(|e| e.driver.take()).collect()
        };
        for d in drivers {
            let _ = d.await;
        }
    }
}

fn set_state(health: &Mutex<TaskHealth>, state: TaskState) {
    health.lock().state = state;
}

fn truncate(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(LAST_ERROR_CHARS_MAX) {
        text.truncate(at);
        text.push('…');
    }
    text
}

fn panic_text(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".into());
            format!("panicked: {msg}")
        }
        Err(_) => "cancelled".into(),
    }
}

/// Runs attempts of one task until it finishes, is stopped or gives up.
async fn drive<F, Fut, E>(ctx: TaskContext, spec: TaskSpec, clock: Arc<dyn Clock>, factory: Arc<F>)
where
    F: Fn(TaskContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let policy = &spec.policy;
    let health = ctx.health.clone();
    loop {
        set_state(
            &health,
            if spec.reports_ready {
                TaskState::Starting
            } else {
                TaskState::Running
            },
        );
        let started = Instant::now();
        // A factory that panics fails the attempt like a future that does.
        let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(ctx.clone())));
        let mut attempt = match made {
            Ok(future) => tokio::spawn(future),
            Err(payload) => tokio::spawn(async move {
                std::panic::resume_unwind(payload);
            }),
        };
        let outcome = tokio::select! {
            joined = &mut attempt => joined,
            () = ctx.cancel.cancelled() => {
                let grace = Duration::from_millis(policy.shutdown_grace_ms);
                if tokio::time::timeout(grace, &mut attempt).await.is_err() {
                    tracing::warn!(task = %ctx.name, "task did not stop within its grace period; aborting it");
                    attempt.abort();
                    let _ = attempt.await;
                }
                set_state(&health, TaskState::Stopped);
                return;
            }
        };
        let error = match outcome {
            Ok(Ok(())) => {
                set_state(&health, TaskState::Stopped);
                return;
            }
            Ok(Err(e)) => e.to_string(),
            Err(join) => panic_text(join),
        };
        let error = truncate(error);
        let ran = started.elapsed();
        let delay_ms = {
            let mut h = health.lock();
            if ran >= Duration::from_millis(policy.stable_after_ms) {
                h.consecutive_failures = 0;
            }
            let delay_ms = policy.backoff_ms(h.consecutive_failures);
            h.consecutive_failures = h.consecutive_failures.saturating_add(1);
            h.last_error = Some(error.clone());
            h.last_error_ms = Some(clock.now_ms());
            if policy
                .restarts_max
                .is_some_and(|max| h.consecutive_failures > max)
            {
                h.state = TaskState::Failed;
                tracing::error!(task = %ctx.name, error = %error, "task failed too often; giving up");
                return;
            }
            h.restarts += 1;
            h.state = TaskState::Backoff {
                until: Instant::now() + Duration::from_millis(delay_ms),
            };
            delay_ms
        };
        tracing::warn!(task = %ctx.name, error = %error, delay_ms, "task failed; restarting");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            () = ctx.cancel.cancelled() => {
                set_state(&health, TaskState::Stopped);
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "supervisor_tests.rs"]
mod tests;
