//! Serving threads ("lanes"): a connection is served, from its first byte to its close, by one
//! thread running a single-threaded runtime, the lane serving the fewest connections when it was
//! accepted; one lane per core. A lone request is then read, committed and answered on one
//! thread: on tokio's multi-threaded runtime the same request woke a second worker about one time
//! in four and its answer crossed threads (together about a fifth of a create's CPU at one
//! connection). The accept loop, deliveries and background work stay on the main runtime.
//!
//! A lane with one HTTP/1 connection lets that connection's writes commit on it when the store
//! is quiet ([`crate::store::lone_commits_here`]): nobody else waits for the lane meanwhile. With
//! more connections, or one HTTP/2 connection (whose streams are concurrent requests), writes go
//! to the store's writer thread and commit together.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// This lane's connections, and how many of them speak HTTP/2.
    static HERE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The serving threads.
pub(super) struct Lanes {
    lanes: Vec<Lane>,
}

struct Lane {
    handle: Handle,
    /// Connections handed to this lane and not yet closed.
    load: Arc<AtomicUsize>,
    stop: oneshot::Sender<()>,
    stopped: oneshot::Receiver<()>,
}

impl Lanes {
    /// Starts `count` lanes (at least one).
    ///
    /// # Errors
    /// A runtime or a thread could not be started.
    pub(super) fn start(count: usize) -> std::io::Result<Self> {
        let mut lanes = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stop_rx) = oneshot::channel::<()>();
            let (done, stopped) = oneshot::channel();
            std::thread::Builder::new()
                .name(format!("hookd-serve-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stop_rx);
                    // Connections still open after the shutdown grace are dropped here.
                    runtime.shutdown_background();
                    let _ = done.send(());
                })?;
            lanes.push(Lane {
                handle,
                load: Arc::new(AtomicUsize::new(0)),
                stop,
                stopped,
            });
        }
        Ok(Self { lanes })
    }

    /// How many lanes this machine gets: one per core.
    pub(super) fn for_this_machine() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    /// Serves `stream` with `serve` on the lane serving the fewest connections. `serve` is given
    /// the stream registered with that lane's runtime, and a [`Seat`] to say that the connection
    /// speaks HTTP/2.
    pub(super) fn serve<S, F>(&self, stream: TcpStream, serve: S)
    where
        S: FnOnce(TcpStream, Arc<Seat>) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(lane) = self
            .lanes
            .iter()
            .min_by_key(|lane| lane.load.load(Ordering::Relaxed))
        else {
            return;
        };
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand a connection to a serving thread");
                return;
            }
        };
        lane.load.fetch_add(1, Ordering::Relaxed);
        let load = lane.load.clone();
        // Boxed: one task type for whatever a lane serves (each future type spawned costs the
        // binary a copy of the runtime's task code for both kinds of scheduler).
        let task: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            let seat = Arc::new(Seat::take(load));
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream, seat).await,
                Err(e) => tracing::debug!(error = %e, "cannot serve a connection"),
            }
        });
        lane.handle.spawn(task);
    }

    /// Stops every lane; connections still open are dropped.
    pub(super) async fn stop(self) {
        let mut stopped = Vec::with_capacity(self.lanes.len());
        for lane in self.lanes {
            let _ = lane.stop.send(());
            stopped.push(lane.stopped);
        }
        for lane in stopped {
            let _ = lane.await;
        }
    }
}

/// A connection's place on its lane, from its start on the lane's thread to its end there.
pub(super) struct Seat {
    load: Arc<AtomicUsize>,
    http2: AtomicBool,
}

impl Seat {
    fn take(load: Arc<AtomicUsize>) -> Self {
        update(|(conns, h2)| (conns + 1, h2));
        Self {
            load,
            http2: AtomicBool::new(false),
        }
    }

    /// The connection speaks HTTP/2: its requests may run concurrently on the lane. Called on the
    /// lane's thread, by the connection's requests.
    pub(super) fn http2(&self) {
        if !self.http2.swap(true, Ordering::Relaxed) {
            update(|(conns, h2)| (conns, h2 + 1));
        }
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let h2 = usize::from(self.http2.load(Ordering::Relaxed));
        update(|(conns, http2)| (conns.saturating_sub(1), http2.saturating_sub(h2)));
        self.load.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Changes this lane's counts and tells the store whether a write may commit on this thread:
/// when the lane serves one connection, over HTTP/1.
fn update(change: impl FnOnce((usize, usize)) -> (usize, usize)) {
    let _ = HERE.try_with(|here| {
        let (conns, h2) = change(here.get());
        here.set((conns, h2));
        crate::store::lone_commits_here(may_block((conns, h2)));
    });
}

/// Whether a write may commit on a lane with these counts (connections, of them HTTP/2).
fn may_block((conns, h2): (usize, usize)) -> bool {
    conns == 1 && h2 == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// What a connection saw on its lane: the lane's thread, and its counts once it had started.
    type Seen = (String, (usize, usize));

    #[tokio::test]
    async fn connections_go_to_the_least_busy_lane_and_are_dropped_when_the_lanes_stop() {
        let lanes = Lanes::start(2).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, mut seen) = mpsc::unbounded_channel::<Seen>();
        let mut clients = Vec::new();
        let mut holds = Vec::new();
        for i in 0..3 {
            clients.push(TcpStream::connect(addr).await.unwrap());
            let (stream, _) = listener.accept().await.unwrap();
            let (hold, held) = oneshot::channel::<()>();
            holds.push(hold);
            let seen_tx = seen_tx.clone();
            lanes.serve(stream, move |stream, seat| async move {
                if i == 2 {
                    seat.http2();
                    seat.http2(); // counted once
                }
                let name = std::thread::current().name().unwrap_or("").to_owned();
                seen_tx.send((name, HERE.with(Cell::get))).unwrap();
                let _ = held.await;
                drop((stream, seat));
            });
            // In turn: each connection is on its lane before the next is handed over.
            let (name, counts) = seen.recv().await.unwrap();
            let expected = match i {
                0 => ("hookd-serve-0", (1, 0)),
                1 => ("hookd-serve-1", (1, 0)),
                _ => ("hookd-serve-0", (2, 1)),
            };
            assert_eq!((name.as_str(), counts), expected, "connection {i}");
        }
        let loads = || -> Vec<usize> {
            lanes
                .lanes
                .iter()
                .map(|lane| lane.load.load(Ordering::Relaxed))
                .collect()
        };
        assert_eq!(loads(), [2, 1]);
        // The first connection closes: its lane is the least busy again (a tie goes first).
        holds.remove(0).send(()).unwrap();
        for _ in 0..200 {
            if loads() == [1, 1] {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(loads(), [1, 1]);
        // Stopping drops the connections still served: their tasks let go of what they hold.
        lanes.stop().await;
        for hold in holds {
            assert!(hold.is_closed());
        }
    }

    #[test]
    fn a_lone_write_may_commit_on_a_lane_with_one_http1_connection_only() {
        assert!(may_block((1, 0)));
        assert!(!may_block((0, 0)));
        assert!(!may_block((2, 0)));
        assert!(!may_block((1, 1)));
        assert!(!may_block((3, 1)));
    }
}
