//! The WebAssembly plugin host: URL-policy plugins are components implementing
//! `plugins/wit/url-policy.wit`, compiled once at load (and cached on disk), then instantiated
//! fresh for every call from an `InstancePre`.
//!
//! Plugins are untrusted code. They get no imports at all (a plugin that imports anything is
//! refused at load), and every call is bounded by fuel, an epoch deadline (wall clock) and a
//! memory limit. A trap, timeout, exhausted fuel or memory, or a malformed answer is an error
//! value naming the plugin and the kind of failure; it never takes the server down.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, ResourceLimiter, Store, Trap};

mod engine;
pub mod transform;

use engine::{start, Current, TickGuard, Ticker};

use crate::config::{OnError, PluginConfig, PluginLimits};
use crate::parse::{plugin_answer, PluginVerdict};

wasmtime::component::bindgen!({
    path: "plugins/wit/url-policy.wit",
    world: "url-policy",
});

/// How often the epoch advances; call deadlines are counted in these ticks (so a deadline is
/// honoured to within one tick).
const TICK: Duration = Duration::from_millis(2);
/// How often an idle epoch thread (no plugins loaded) checks whether the engine is gone.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Wasm stack a call may use.
const MAX_WASM_STACK: usize = 512 * 1024;
/// Plugin instances that may be alive at once. A check holds one per plugin in its set (they
/// share one store), so 2 plugins allow 64 concurrent checks.
pub const INSTANCE_SLOTS: u32 = 128;
/// Instance slots beyond [`INSTANCE_SLOTS`] for the load-time trial instantiation of a reload.
const SPARE_SLOTS: u32 = 16;

/// Linear memory kept mapped between uses of a pool slot (reset with memset, not page faults).
const KEEP_RESIDENT: usize = 256 * 1024;
const WASM_PAGE: usize = 64 * 1024;

/// Why a plugin call failed (as opposed to denying).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    Trap,
    Timeout,
    OutOfFuel,
    OutOfMemory,
    MalformedAnswer,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::OutOfFuel => "out of fuel",
            Self::OutOfMemory => "out of memory",
            Self::MalformedAnswer => "malformed answer",
        }
    }

    /// As a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Trap => "trap",
            Self::Timeout => "timeout",
            Self::OutOfFuel => "out_of_fuel",
            Self::OutOfMemory => "out_of_memory",
            Self::MalformedAnswer => "malformed_answer",
        }
    }
}

/// The outcome of running the plugin chain on a URL, when it does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A plugin answered deny.
    Denied { plugin: String, reason: String },
    /// A plugin failed and is configured to fail closed.
    Failed {
        plugin: String,
        kind: FailureKind,
        detail: String,
    },
}

/// A plugin that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("plugin '{name}' ({path}): {reason}")]
pub struct LoadError {
    pub name: String,
    pub path: String,
    pub reason: String,
}

/// The engine, the call limits, and the current plugin set (swapped whole on reload).
pub struct PluginHost {
    engine: Engine,
    ticker: Arc<Ticker>,
    limits: PluginLimits,
    current: Current<PluginSet>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// One loaded set of plugins, in configured order. Requests hold an `Arc` to the set they
/// started with, so a reload never changes a request in flight.
pub struct PluginSet {
    engine: Engine,
    limits: PluginLimits,
    plugins: Vec<Plugin>,
    _ticking: Option<TickGuard>,
}

/// Fuel a plugin call may burn inline, on an async worker, before the check moves to the
/// blocking pool: well under a millisecond of work. The shipped plugins use a few thousand per
/// call; a plugin that needs more (or loops) is run again from the start off the runtime, with
/// its full budget. Plugins are pure functions of their input (no imports, a fresh instance per
/// call), so the re-run answers what the first run would have.
pub const INLINE_FUEL: u64 = 200_000;
/// Epoch ticks an inline call may take before it moves off the runtime (2-4 ms of wall clock):
/// the bound for a call preempted on a busy machine before its fuel runs out.
const INLINE_TICKS: u64 = 2;

/// How a check that started inline ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// The chain finished within the inline budget.
    Done(Result<(), Rejection>),
    /// The plugin at this index needs more than the inline budget: run the chain from it with
    /// [`PluginSet::check_from`], off the async runtime.
    Offload(usize),
}

/// A call's budget.
#[derive(Debug, Clone, Copy)]
struct Budget {
    fuel: u64,
    ticks: u64,
    /// Running out of this budget means "needs more", not failure.
    inline: bool,
}

struct Plugin {
    name: String,
    settings: String,
    on_error: OnError,
    pre: UrlPolicyPre<CallState>,
}

/// Store data for one check: the memory limit, whether the current call ran into it, and how
/// many plugins share the store (each may bring its own instances, memories and tables).
struct CallState {
    memory_limit: usize,
    memory_hit: bool,
    plugins: usize,
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_hit = true;
            return Err(wasmtime::Error::msg("plugin memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        16 * self.plugins
    }

    fn memories(&self) -> usize {
        4 * self.plugins
    }

    fn tables(&self) -> usize {
        16 * self.plugins
    }
}

impl PluginHost {
    /// Builds the engine (fuel, epochs, compiled-code cache in `cache_dir` if given) and loads
    /// `plugins`.
    ///
    /// # Errors
    /// The first plugin that cannot be loaded, or an engine that cannot be configured (among
    /// others: a cache directory another user owns).
    pub fn new(
        limits: &PluginLimits,
        cache_dir: Option<&Path>,
        plugins: &[PluginConfig],
    ) -> Result<Self, LoadError> {
        let (engine, ticker) = start(cache_dir, limits, INSTANCE_SLOTS + SPARE_SLOTS, "(engine)")?;
        let set = PluginSet::load(&engine, &ticker, limits, plugins)?;
        Ok(Self {
            engine,
            ticker,
            limits: limits.clone(),
            current: Current::new(set),
            slots: Arc::new(tokio::sync::Semaphore::new(INSTANCE_SLOTS as usize)),
        })
    }

    /// Waits for the pooled instance slots a check of `set` needs (one per plugin); hold them
    /// across [`PluginSet::check`].
    pub async fn slots(&self, set: &PluginSet) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let needed = u32::try_from(set.plugins.len()).unwrap_or(u32::MAX);
        self.slots.clone().acquire_many_owned(needed).await.ok()
    }

    /// The set new requests use.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current.get()
    }

    /// Loads `plugins` and, only if every one loads, makes them the current set.
    ///
    /// # Errors
    /// The first plugin that cannot be loaded; the current set is then unchanged.
    pub fn reload(&self, plugins: &[PluginConfig]) -> Result<usize, LoadError> {
        let set = PluginSet::load(&self.engine, &self.ticker, &self.limits, plugins)?;
        let count = set.plugins.len();
        self.current.set(set);
        Ok(count)
    }
}

impl PluginSet {
    fn load(
        engine: &Engine,
        ticker: &Arc<Ticker>,
        limits: &PluginLimits,
        configs: &[PluginConfig],
    ) -> Result<Self, LoadError> {
        let ticking = (!configs.is_empty()).then(|| ticker.keep_ticking());
        let plugins = configs
            .iter()
            .map(|c| load_plugin(engine, limits, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            engine: engine.clone(),
            limits: limits.clone(),
            plugins,
            _ticking: ticking,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn names(&self) -> Vec<&str> {
        self.plugins.iter().map(|p| p.name.as_str()).collect()
    }

    /// Runs every plugin in order with its full budget; the first deny (or fail-closed
    /// failure) wins. Blocking (up to the deadline per plugin): on the async runtime, use
    /// [`PluginSet::check_inline`] instead.
    ///
    /// # Errors
    /// The [`Rejection`] that stopped the chain.
    pub fn check(&self, url: &str, name: &str, operation: &str) -> Result<(), Rejection> {
        self.check_from(0, url, name, operation)
    }

    /// [`PluginSet::check`] from the plugin at `start` on (the plugins before it allowed).
    ///
    /// # Errors
    /// As [`PluginSet::check`].
    pub fn check_from(
        &self,
        start: usize,
        url: &str,
        name: &str,
        operation: &str,
    ) -> Result<(), Rejection> {
        let budget = Budget {
            fuel: self.limits.fuel,
            ticks: deadline_ticks(&self.limits),
            inline: false,
        };
        match self.run(start, budget, (url, name, operation)) {
            Inline::Done(outcome) => outcome,
            Inline::Offload(_) => unreachable_offload(),
        }
    }

    /// Runs the chain within the small inline budget ([`INLINE_FUEL`]), cheap enough for an
    /// async worker; a plugin that needs more is not failed but handed back to be run again
    /// off the runtime.
    pub fn check_inline(&self, url: &str, name: &str, operation: &str) -> Inline {
        let full_ticks = deadline_ticks(&self.limits);
        let budget = Budget {
            fuel: INLINE_FUEL.min(self.limits.fuel),
            ticks: INLINE_TICKS.min(full_ticks),
            inline: INLINE_FUEL < self.limits.fuel || INLINE_TICKS < full_ticks,
        };
        self.run(0, budget, (url, name, operation))
    }

    fn run(&self, start: usize, budget: Budget, input: (&str, &str, &str)) -> Inline {
        // One store for the chain: each plugin still gets a fresh instance and its own fuel,
        // deadline and memory limit, but the store is set up and torn down once per check.
        let mut store = new_store(&self.engine, &self.limits, self.plugins.len());
        for (index, plugin) in self.plugins.iter().enumerate().skip(start) {
            match self.call(&mut store, plugin, budget, input) {
                Ok(PluginVerdict::Allow) => {}
                Ok(PluginVerdict::Deny(reason)) => {
                    return Inline::Done(Err(Rejection::Denied {
                        plugin: plugin.name.clone(),
                        reason,
                    }))
                }
                Err((FailureKind::Timeout | FailureKind::OutOfFuel, _)) if budget.inline => {
                    return Inline::Offload(index);
                }
                Err((kind, detail)) => {
                    tracing::warn!(plugin = %plugin.name, kind = kind.as_str(), ?detail, "plugin failed");
                    if plugin.on_error == OnError::Deny {
                        return Inline::Done(Err(Rejection::Failed {
                            plugin: plugin.name.clone(),
                            kind,
                            detail,
                        }));
                    }
                    // A trap poisons the whole store (no component in it may be entered again):
                    // the rest of the chain gets a new one.
                    store = new_store(&self.engine, &self.limits, self.plugins.len());
                }
            }
        }
        Inline::Done(Ok(()))
    }

    /// One bounded call: a fresh instance in `store`, with `budget`'s fuel and deadline and the
    /// memory limit.
    fn call(
        &self,
        store: &mut Store<CallState>,
        plugin: &Plugin,
        budget: Budget,
        (url, name, operation): (&str, &str, &str),
    ) -> Result<PluginVerdict, (FailureKind, String)> {
        arm(store, budget.fuel, budget.ticks);
        let answer = plugin.pre.instantiate(&mut *store).and_then(|bindings| {
            bindings.call_check(&mut *store, url, name, operation, &plugin.settings)
        });
        match answer {
            Ok(answer) => plugin_answer(answer).map_err(|why| (FailureKind::MalformedAnswer, why)),
            Err(e) => Err((classify(&e, store.data()), format!("{e:#}"))),
        }
    }
}

/// A full-budget run never hands the check back.
fn unreachable_offload() -> Result<(), Rejection> {
    Err(Rejection::Failed {
        plugin: "(host)".into(),
        kind: FailureKind::Timeout,
        detail: "a full-budget check asked to be offloaded".into(),
    })
}

/// The call deadline in epoch ticks.
fn deadline_ticks(limits: &PluginLimits) -> u64 {
    limits
        .timeout_ms
        .div_ceil(u64::try_from(TICK.as_millis()).unwrap_or(1))
        .max(1)
}

fn new_store(engine: &Engine, limits: &PluginLimits, plugins: usize) -> Store<CallState> {
    let mut store = Store::new(
        engine,
        CallState {
            memory_limit: limits.memory_bytes,
            memory_hit: false,
            plugins: plugins.max(1),
        },
    );
    store.limiter(|s| s);
    arm(&mut store, limits.fuel, deadline_ticks(limits));
    store
}

/// Gives the next call in `store` its own budget: `fuel`, a deadline `ticks` from now, and a
/// clean memory-limit flag. Set before instantiation, so start functions are bounded too.
fn arm(store: &mut Store<CallState>, fuel: u64, ticks: u64) {
    store.data_mut().memory_hit = false;
    let _ = store.set_fuel(fuel);
    store.set_epoch_deadline(ticks);
}

fn classify(e: &wasmtime::Error, state: &CallState) -> FailureKind {
    if state.memory_hit {
        return FailureKind::OutOfMemory;
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => FailureKind::Timeout,
        Some(Trap::OutOfFuel) => FailureKind::OutOfFuel,
        Some(_) => FailureKind::Trap,
        // Errors that are not traps come from lifting the answer: a string out of bounds or
        // not UTF-8, a bad discriminant.
        None => FailureKind::MalformedAnswer,
    }
}

/// Loads one URL-policy plugin (see [`load`]).
fn load_plugin(
    engine: &Engine,
    limits: &PluginLimits,
    config: &PluginConfig,
) -> Result<Plugin, LoadError> {
    let pre = load(
        engine,
        limits,
        (&config.name, &config.path),
        "url-policy",
        UrlPolicyPre::new,
        |pre, store| pre.instantiate(store).map(drop),
    )?;
    Ok(Plugin {
        name: config.name.clone(),
        settings: config.settings.clone(),
        on_error: config.on_error,
        pre,
    })
}

/// Compiles (or takes from the cache) the plugin `name` at `path`, checks that it imports
/// nothing and implements `world` (`typed` makes its typed pre-instance), and instantiates it
/// once with `start`, so a broken start function fails at load.
fn load<P>(
    engine: &Engine,
    limits: &PluginLimits,
    (name, path): (&str, &Path),
    world: &str,
    typed: impl FnOnce(InstancePre<CallState>) -> wasmtime::Result<P>,
    start: impl FnOnce(&P, &mut Store<CallState>) -> wasmtime::Result<()>,
) -> Result<P, LoadError> {
    let fail = |reason: String| LoadError {
        name: name.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let pre = typed(compile(engine, path).map_err(fail)?).map_err(|e| {
        fail(format!(
            "does not implement the world hookd:plugin/{world}@0.1.0 ({e:#})"
        ))
    })?;
    let mut store = new_store(engine, limits, 1);
    start(&pre, &mut store).map_err(|e| fail(format!("fails to start: {e:#}")))?;
    Ok(pre)
}

/// Compiles (or takes from the cache) the component at `path` and checks that it imports
/// nothing.
fn compile(engine: &Engine, path: &Path) -> Result<InstancePre<CallState>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let component = Component::new(engine, &bytes).map_err(|e| {
        format!(
            "not a valid WebAssembly component ({e:#}); build it with `wasm-tools component new`"
        )
    })?;
    let imports: Vec<String> = component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    if !imports.is_empty() {
        return Err(format!(
            "imports {}; plugins may import nothing (no WASI, files, network or clock)",
            imports.join(", ")
        ));
    }
    let linker: Linker<CallState> = Linker::new(engine);
    linker
        .instantiate_pre(&component)
        .map_err(|e| format!("cannot be instantiated: {e:#}"))
}

/// A one-plugin set for `hookd plugin check`: compiled afresh, with no cache (a shared cache
/// directory would let another user swap in the native code it runs).
///
/// # Errors
/// As [`PluginHost::new`].
pub fn single(
    path: PathBuf,
    settings: String,
    limits: &PluginLimits,
) -> Result<PluginHost, LoadError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into());
    PluginHost::new(
        limits,
        None,
        &[PluginConfig {
            name,
            path,
            settings,
            on_error: OnError::Deny,
        }],
    )
}
