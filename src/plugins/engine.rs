//! The plugin engine: wasmtime configured for untrusted components (pooled instances, fuel,
//! epochs, explicit bounds checks), its private compiled-code cache, the thread that advances
//! the epoch while plugins are loaded, and the current set that a reload swaps.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use wasmtime::{Cache, CacheConfig, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::{LoadError, IDLE_CHECK, KEEP_RESIDENT, MAX_WASM_STACK, TICK, WASM_PAGE};
use crate::config::PluginLimits;

/// The set of plugins calls use now, swapped whole by a reload (calls in flight keep the `Arc`
/// of the set they started with).
pub(super) struct Current<T>(RwLock<Arc<T>>);

impl<T> Current<T> {
    pub(super) fn new(set: T) -> Self {
        Self(RwLock::new(Arc::new(set)))
    }

    pub(super) fn get(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, set: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }
}

/// An engine for `what` (named in a failure) and its epoch thread, with `slots` pooled
/// instance slots of `limits`' memory.
pub(super) fn start(
    cache_dir: Option<&Path>,
    limits: &PluginLimits,
    slots: u32,
    what: &str,
) -> Result<(Engine, Arc<Ticker>), LoadError> {
    let engine = build_engine(cache_dir, limits, slots).map_err(|reason| LoadError {
        name: what.to_owned(),
        path: cache_dir
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        reason,
    })?;
    let ticker = Ticker::start(&engine);
    Ok((engine, ticker))
}

/// An engine for untrusted components with `slots` pooled instance slots of `limits`' memory.
fn build_engine(
    cache_dir: Option<&Path>,
    limits: &PluginLimits,
    slots: u32,
) -> Result<Engine, String> {
    let memory = limits.memory_bytes.div_ceil(WASM_PAGE) * WASM_PAGE;
    // Pre-allocated instance slots: a call takes a warm slot instead of mapping fresh memory.
    // Memories are reserved at exactly the limit, with explicit bounds checks.
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        .max_memory_size(memory)
        .linear_memory_keep_resident(KEEP_RESIDENT.min(memory))
        .table_keep_resident(16 * 1024);
    // Where the kernel has PAGEMAP_SCAN (Linux 6.7+), a used slot is reset by zeroing only the
    // pages the plugin wrote to, rather than all of its memory.
    pool.pagemap_scan(wasmtime::Enabled::Auto);
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .memory_reservation(memory as u64)
        // No guard pages and no signal-based traps: bounds are checked explicitly, so a pool slot
        // is never re-protected with mprotect (a TLB shootdown on every core) between calls.
        .signals_based_traps(false)
        .memory_guard_size(0)
        .memory_reservation_for_growth(0)
        // Copy data segments in rather than map an image: no mmap (and TLB shootdown) per call.
        .memory_init_cow(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    if let Some(cache_dir) = cache_dir {
        config.cache(Some(cache(cache_dir)?));
    }
    Engine::new(&config).map_err(|e| e.to_string())
}

/// The compiled-code cache in `dir`. wasmtime loads what it finds there as native code, so the
/// directory must be private (0700) and belong to the user hookd runs as: one that another
/// user owns (a shared temporary directory, say) is refused, not taken over.
fn cache(dir: &Path) -> Result<Cache, String> {
    crate::files::private_dir(dir, &mut Vec::new())
        .map_err(|e| format!("cache directory {}: {e}", dir.display()))?;
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cache directory {}: {e}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    if !meta.is_dir() || std::os::unix::fs::MetadataExt::uid(&meta) != me {
        return Err(format!(
            "cache directory {} is {}, not a directory of hookd's user (uid {me}): compiled plugins are native code, so hookd loads them only from a directory it owns",
            dir.display(),
            if meta.is_dir() {
                format!("owned by uid {}", std::os::unix::fs::MetadataExt::uid(&meta))
            } else {
                "a link or a file".to_owned()
            }
        ));
    }
    // wasmtime's cache takes only absolute paths; the default data directory is relative.
    let dir = std::path::absolute(dir).map_err(|e| format!("cache directory: {e}"))?;
    let mut cache_config = CacheConfig::new();
    cache_config.with_directory(dir);
    Cache::new(cache_config).map_err(|e| format!("compiled-code cache: {e}"))
}

/// The thread that advances the engine's epoch every [`TICK`] while any plugin set with plugins
/// is alive (the current one, or an older one a request still runs on). With none, it sleeps
/// until a set is loaded, waking every few seconds only to notice that the engine is gone.
pub(super) struct Ticker {
    live_sets: AtomicUsize,
    thread: OnceLock<std::thread::Thread>,
}

impl Ticker {
    pub(super) fn start(engine: &Engine) -> Arc<Self> {
        let ticker = Arc::new(Self {
            live_sets: AtomicUsize::new(0),
            thread: OnceLock::new(),
        });
        let weak = engine.weak();
        let shared = ticker.clone();
        let spawned = std::thread::Builder::new()
            .name("hookd-plugin-epoch".into())
            .spawn(move || loop {
                if shared.live_sets.load(Ordering::Acquire) == 0 {
                    std::thread::park_timeout(IDLE_CHECK);
                } else {
                    std::thread::sleep(TICK);
                }
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            });
        if let Ok(handle) = spawned {
            let _ = ticker.thread.set(handle.thread().clone());
        }
        ticker
    }

    /// Keeps the epoch ticking while the guard lives: a set with plugins holds one, and so does
    /// loading one (start functions are bounded by the deadline too).
    pub(super) fn keep_ticking(self: &Arc<Self>) -> TickGuard {
        if self.live_sets.fetch_add(1, Ordering::AcqRel) == 0 {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
        TickGuard(self.clone())
    }
}

pub(super) struct TickGuard(Arc<Ticker>);

impl Drop for TickGuard {
    fn drop(&mut self) {
        self.0.live_sets.fetch_sub(1, Ordering::AcqRel);
    }
}
