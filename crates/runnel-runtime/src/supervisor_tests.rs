//! Supervisor behaviour under tokio's paused clock: no test waits for real time.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use runnel_types::ManualClock;
use tokio::time::Instant;

use super::*;

fn supervisor() -> Supervisor {
    Supervisor::new(Arc::new(ManualClock::frozen(1_700_000_000_000)))
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        backoff_base_ms: 100,
        backoff_max_ms: 1_000,
        stable_after_ms: 10_000,
        restarts_max: None,
        shutdown_grace_ms: 500,
    }
}

fn spec(policy: RestartPolicy) -> TaskSpec {
    TaskSpec {
        policy,
        reports_ready: false,
    }
}

/// Lets spawned tasks run until they block (on time or a token).
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

async fn advance_ms(ms: u64) {
    tokio::time::advance(Duration::from_millis(ms)).await;
    settle().await;
}

/// A task that fails at once on every attempt, counting attempts.
fn always_failing(sup: &Supervisor, name: &str, policy: RestartPolicy) -> Arc<AtomicU32> {
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    sup.spawn(name, spec(policy), move |_ctx| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Err::<(), String>(format!("attempt {n} failed")) }
    })
    .unwrap();
    attempts
}

#[test]
fn backoff_doubles_up_to_the_max() {
    let p = policy();
    let delays: Vec<u64> = (0..6).map(|n| p.backoff_ms(n)).collect();
    assert_eq!(delays, [100, 200, 400, 800, 1_000, 1_000]);
    assert_eq!(p.backoff_ms(u32::MAX), 1_000);
}

#[tokio::test(start_paused = true)]
async fn failed_task_restarts_with_exponential_backoff() {
    let sup = supervisor();
    let t0 = Instant::now();
    let attempts = always_failing(&sup, "t", policy());
    settle().await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    let h = sup.health("t").unwrap();
    assert_eq!(
        h.state,
        TaskState::Backoff {
            until: t0 + Duration::from_millis(100)
        }
    );
    assert_eq!(h.restarts, 1);
    assert_eq!(h.last_error.as_deref(), Some("attempt 1 failed"));
    assert_eq!(h.last_error_ms, Some(1_700_000_000_000));

    advance_ms(99).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "restarted before its backoff"
    );
    advance_ms(1).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    // 200 ms, then 400 ms: the second restart is not due at +399.
    advance_ms(200).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    advance_ms(399).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    advance_ms(1).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    let h = sup.health("t").unwrap();
    assert_eq!(h.restarts, 4);
    assert_eq!(h.consecutive_failures, 4);
    assert_eq!(h.last_error.as_deref(), Some("attempt 4 failed"));
    sup.shutdown().await;
    assert_eq!(sup.health("t").unwrap().state, TaskState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn panic_is_caught_and_restarted() {
    let sup = supervisor();
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    sup.spawn("p", spec(policy()), move |ctx| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                panic!("boom");
            }
            ctx.cancelled().await;
            Ok::<(), String>(())
        }
    })
    .unwrap();
    settle().await;
    let h = sup.health("p").unwrap();
    assert!(matches!(h.state, TaskState::Backoff { .. }), "{h:?}");
    assert_eq!(h.last_error.as_deref(), Some("panicked: boom"));
    advance_ms(100).await;
    let h = sup.health("p").unwrap();
    assert_eq!(h.state, TaskState::Running);
    assert_eq!(h.restarts, 1);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stable_attempt_resets_the_backoff() {
    let sup = supervisor();
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    let t0 = Instant::now();
    // Attempts 1-3 fail at once; attempt 4 runs 10 s (stable) and fails.
    sup.spawn("s", spec(policy()), move |_ctx| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n == 4 {
                tokio::time::sleep(Duration::from_millis(10_000)).await;
            }
            Err::<(), String>(format!("failure {n}"))
        }
    })
    .unwrap();
    settle().await;
    advance_ms(100).await;
    advance_ms(200).await;
    assert_eq!(sup.health("s").unwrap().consecutive_failures, 3);
    advance_ms(400).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert_eq!(sup.health("s").unwrap().state, TaskState::Running);
    advance_ms(10_000).await;
    let h = sup.health("s").unwrap();
    assert_eq!(h.consecutive_failures, 1, "{h:?}");
    assert_eq!(h.restarts, 4);
    // Back to the base delay, not 800 ms.
    assert_eq!(
        h.state,
        TaskState::Backoff {
            until: t0 + Duration::from_millis(100 + 200 + 400 + 10_000 + 100)
        }
    );
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_restarts_max() {
    let sup = supervisor();
    let attempts = always_failing(
        &sup,
        "f",
        RestartPolicy {
            restarts_max: Some(2),
            ..policy()
        },
    );
    settle().await;
    advance_ms(100).await;
    advance_ms(200).await;
    let h = sup.health("f").unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(h.state, TaskState::Failed);
    assert_eq!(h.restarts, 2);
    assert_eq!(h.last_error.as_deref(), Some("attempt 3 failed"));
    advance_ms(60_000).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "restarted after giving up"
    );
}

#[tokio::test(start_paused = true)]
async fn ok_return_is_stopped_not_restarted() {
    let sup = supervisor();
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    sup.spawn("done", spec(policy()), move |_ctx| {
        counter.fetch_add(1, Ordering::SeqCst);
        async { Ok::<(), String>(()) }
    })
    .unwrap();
    settle().await;
    advance_ms(5_000).await;
    let h = sup.health("done").unwrap();
    assert_eq!(h.state, TaskState::Stopped);
    assert_eq!(h.restarts, 0);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_and_aborts_a_task_that_ignores_it() {
    let sup = supervisor();
    let polite_done = Arc::new(AtomicU32::new(0));
    let flag = polite_done.clone();
    sup.spawn("polite", spec(policy()), move |ctx| {
        let flag = flag.clone();
        async move {
            ctx.cancelled().await;
            flag.store(1, Ordering::SeqCst);
            Ok::<(), String>(())
        }
    })
    .unwrap();
    sup.spawn("stubborn", spec(policy()), |_ctx| async {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        Ok::<(), String>(())
    })
    .unwrap();
    settle().await;
    assert_eq!(sup.health("polite").unwrap().state, TaskState::Running);

    sup.stop("polite").await.unwrap();
    assert_eq!(polite_done.load(Ordering::SeqCst), 1);
    assert_eq!(sup.health("polite").unwrap().state, TaskState::Stopped);
    assert_eq!(sup.health("stubborn").unwrap().state, TaskState::Running);

    let before = Instant::now();
    sup.stop("stubborn").await.unwrap();
    assert_eq!(before.elapsed(), Duration::from_millis(500), "grace period");
    assert_eq!(sup.health("stubborn").unwrap().state, TaskState::Stopped);
    // Stopping again is harmless; removing forgets it.
    sup.stop("stubborn").await.unwrap();
    sup.remove("stubborn").await.unwrap();
    assert_eq!(sup.health("stubborn"), None);
    assert_eq!(
        sup.stop("stubborn").await,
        Err(SupervisorError::UnknownTask("stubborn".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn stop_during_backoff_stops() {
    let sup = supervisor();
    let attempts = always_failing(&sup, "b", policy());
    settle().await;
    sup.stop("b").await.unwrap();
    assert_eq!(sup.health("b").unwrap().state, TaskState::Stopped);
    advance_ms(5_000).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_everything_and_refuses_new_tasks() {
    let sup = supervisor();
    for name in ["a", "b", "c"] {
        sup.spawn(name, spec(policy()), |ctx| async move {
            ctx.cancelled().await;
            Ok::<(), String>(())
        })
        .unwrap();
    }
    let _ = always_failing(&sup, "d", policy());
    settle().await;
    assert_eq!(
        sup.spawn("a", spec(policy()), |_ctx| async { Ok::<(), String>(()) }),
        Err(SupervisorError::Duplicate("a".into()))
    );
    sup.shutdown().await;
    let all = sup.health_all();
    assert_eq!(all.len(), 4);
    assert!(
        all.values().all(|h| h.state == TaskState::Stopped),
        "{all:?}"
    );
    assert_eq!(
        sup.spawn("e", spec(policy()), |_ctx| async { Ok::<(), String>(()) }),
        Err(SupervisorError::ShuttingDown)
    );
}

#[tokio::test(start_paused = true)]
async fn reports_ready_keeps_starting_until_ready() {
    let sup = supervisor();
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    sup.spawn(
        "r",
        TaskSpec {
            policy: policy(),
            reports_ready: true,
        },
        move |ctx| {
            let mut go = go_rx.clone();
            async move {
                let _ = go.wait_for(|g| *g).await;
                ctx.ready();
                ctx.cancelled().await;
                Ok::<(), String>(())
            }
        },
    )
    .unwrap();
    settle().await;
    assert_eq!(sup.health("r").unwrap().state, TaskState::Starting);
    go_tx.send(true).unwrap();
    settle().await;
    assert_eq!(sup.health("r").unwrap().state, TaskState::Running);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn long_error_text_is_cut() {
    let sup = supervisor();
    sup.spawn("long", spec(policy()), |_ctx| async {
        Err::<(), String>("é".repeat(5_000))
    })
    .unwrap();
    settle().await;
    let text = sup.health("long").unwrap().last_error.unwrap();
    assert_eq!(text.chars().count(), LAST_ERROR_CHARS_MAX + 1);
    assert!(text.ends_with('…'));
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_factory_counts_as_a_failed_attempt() {
    let sup = supervisor();
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = attempts.clone();
    sup.spawn("factory", spec(policy()), move |ctx| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("cannot build");
        }
        async move {
            ctx.cancelled().await;
            Ok::<(), String>(())
        }
    })
    .unwrap();
    settle().await;
    let h = sup.health("factory").unwrap();
    assert!(matches!(h.state, TaskState::Backoff { .. }), "{h:?}");
    assert_eq!(h.last_error.as_deref(), Some("panicked: cannot build"));
    advance_ms(100).await;
    assert_eq!(sup.health("factory").unwrap().state, TaskState::Running);
    sup.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_supervisor_cancels_its_tasks() {
    let sup = supervisor();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = parking_lot::Mutex::new(Some(tx));
    sup.spawn("t", spec(policy()), move |ctx| {
        let tx = tx.lock().take();
        async move {
            ctx.cancelled().await;
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
            Ok::<(), String>(())
        }
    })
    .unwrap();
    settle().await;
    drop(sup);
    tokio::time::timeout(Duration::from_secs(1), rx)
        .await
        .expect("the task saw its cancellation")
        .unwrap();
}
