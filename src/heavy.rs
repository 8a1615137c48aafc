//! CPU-bound work a request may cause: compiling label matchers, routing an alert against costly
//! ones. It runs on its own threads, one fewer than the cores (at least one), at a lower CPU
//! priority (nice 10), so that neither the async workers nor the store's writer ever wait for
//! it: on a busy machine the kernel gives them the cores first, and a client that sends the
//! costliest work only slows itself.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

/// How many jobs may wait for a thread before callers wait to hand theirs over.
const QUEUE: usize = 64;
/// The threads' niceness (0 is normal; higher yields to everything else).
const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// The threads and their queue.
pub struct Heavy {
    tx: mpsc::Sender<Job>,
}

impl Heavy {
    /// Starts `threads` threads (at least one).
    pub fn start(threads: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hookd-heavy-{i}"))
                .spawn(move || {
                    // Linux: the thread's own niceness. Raising it needs no privilege.
                    let _ =
                        rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICE);
                    loop {
                        let job = rx
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .blocking_recv();
                        let Some(job) = job else { break };
                        // A panic fails that request (its answer is dropped), not the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a thread for CPU-bound work");
            }
        }
        Self { tx }
    }

    /// One fewer than the cores, at least one.
    pub fn threads_for_this_machine() -> usize {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .saturating_sub(1)
            .max(1)
    }

    /// Runs `work` on one of the threads and waits for its answer; `None` if it panicked or
    /// the threads are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(work());
        });
        self.tx.send(job).await.ok()?;
        rx.await.ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn runs_work_at_a_lower_priority_and_survives_a_panic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let heavy = Heavy::start(1);
        rt.block_on(async {
            assert_eq!(heavy.run(|| 6 * 7).await, Some(42));
            assert_eq!(heavy.run(|| -> u8 { panic!("boom") }).await, None);
            let nice = heavy
                .run(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(nice, NICE);
        });
    }
}
