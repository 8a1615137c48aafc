//! Transformer plugins: components implementing `plugins/wit/transformer.wit` that turn an
//! event into the request an endpoint gets (its `format` is `plugin:<name>`).
//!
//! The sandbox is the URL-policy plugins' (see the parent module): no imports, a fresh instance
//! per call, fuel, an epoch deadline and a memory limit, every failure an error value. The
//! engine is their own, sized by `[transformer_limits]` (a transformer reads a whole
//! Alertmanager group). A call runs first within the inline budget on the async worker that
//! asked; one that needs more runs again from the start, with the full budget, on the heavy
//! threads (a transformer is a pure function of its input, so the second run answers what the
//! first would have).
//!
//! A transformer that says it does not use the endpoint's name (it exports
//! `uses-endpoint-name`, answering `false`) gets the name "" in every call: its request for an
//! event is then the same for every endpoint, so the set keeps it and a message fanned out to
//! many endpoints makes one call.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use wasmtime::Engine;

use super::engine::{start, Current, TickGuard, Ticker};
use super::{
    arm, classify, deadline_ticks, load, new_store, Budget, FailureKind, LoadError, INLINE_FUEL,
    INLINE_TICKS,
};
use crate::bodies::Bodies;
use crate::config::{PluginLimits, TransformerConfig};
use crate::format::{Rendered, TransformError, TransformInput, Transformers, Transforming};
use crate::heavy::Heavy;

wasmtime::component::bindgen!({
    path: "plugins/wit/transformer.wit",
    world: "transformer",
});

/// Transformer instances alive at once (calls beyond wait for a slot).
pub const TRANSFORM_SLOTS: u32 = 32;
/// Slots beyond [`TRANSFORM_SLOTS`] for the load-time trial instantiation of a reload.
const SPARE_SLOTS: u32 = 4;

/// Every outcome a transformer call is counted under (`hookd_transforms_total`).
pub const OUTCOMES: [&str; 7] = [
    "ok",
    "error",
    "trap",
    "timeout",
    "out_of_fuel",
    "out_of_memory",
    "malformed_answer",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransformLabels {
    pub transformer: String,
    pub outcome: &'static str,
}

/// The engine, the call limits, and the current transformers (swapped whole on reload).
pub struct TransformerHost {
    engine: Engine,
    ticker: Arc<Ticker>,
    limits: PluginLimits,
    current: Current<TransformerSet>,
    slots: Arc<tokio::sync::Semaphore>,
    heavy: Arc<Heavy>,
    calls: Family<TransformLabels, Counter>,
}

/// One loaded set of transformers. A call holds an `Arc` to the set it started with, so a
/// reload never changes a call in flight.
pub struct TransformerSet {
    engine: Engine,
    limits: PluginLimits,
    transformers: HashMap<String, Loaded>,
    /// The requests of the transformers that do not use the endpoint's name, by transformer
    /// and message id (a reload starts a new set, so settings never go stale here).
    shared: Bodies<(String, String)>,
    _ticking: Option<TickGuard>,
}

struct Loaded {
    settings: String,
    pre: TransformerPre<super::CallState>,
    /// Whether its calls get the endpoint's name (else "", and one call serves every endpoint).
    per_endpoint: bool,
}

/// How one call ended: a request, the transformer's own error, or a failure.
type Outcome = Result<Result<Rendered, String>, (FailureKind, String)>;

impl TransformerHost {
    /// Builds the engine (compiled-code cache in `cache_dir` if given) and loads `configs`.
    ///
    /// # Errors
    /// The first transformer that cannot be loaded, or an engine that cannot be configured.
    pub fn new(
        limits: &PluginLimits,
        cache_dir: Option<&Path>,
        configs: &[TransformerConfig],
        heavy: Arc<Heavy>,
    ) -> Result<Self, LoadError> {
        let (engine, ticker) = start(
            cache_dir,
            limits,
            TRANSFORM_SLOTS + SPARE_SLOTS,
            "(transformer engine)",
        )?;
        let set = TransformerSet::load(&engine, &ticker, limits, configs)?;
        Ok(Self {
            engine,
            ticker,
            limits: limits.clone(),
            current: Current::new(set),
            slots: Arc::new(tokio::sync::Semaphore::new(TRANSFORM_SLOTS as usize)),
            heavy,
            calls: Family::default(),
        })
    }

    /// The set calls use now.
    pub fn current(&self) -> Arc<TransformerSet> {
        self.current.get()
    }

    /// Loads `configs` and, only if every one loads, makes them the current set.
    ///
    /// # Errors
    /// The first transformer that cannot be loaded; the current set is then unchanged.
    pub fn reload(&self, configs: &[TransformerConfig]) -> Result<usize, LoadError> {
        let set = TransformerSet::load(&self.engine, &self.ticker, &self.limits, configs)?;
        let count = set.transformers.len();
        self.current.set(set);
        Ok(count)
    }

    /// The calls made, by transformer and outcome, for the metrics registry.
    pub fn calls(&self) -> Family<TransformLabels, Counter> {
        self.calls.clone()
    }

    fn count(&self, name: &str, outcome: &Outcome) {
        let outcome = match outcome {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "error",
            Err((kind, _)) => kind.label(),
        };
        self.calls
            .get_or_create(&TransformLabels {
                transformer: name.to_owned(),
                outcome,
            })
            .inc();
    }

    /// One call of `name` in `set`: within the inline budget on this async worker, and again
    /// with the full budget on the heavy threads if that was not enough.
    async fn run(
        &self,
        set: &Arc<TransformerSet>,
        name: &str,
        input: TransformInput,
    ) -> Result<Rendered, TransformError> {
        // Never closed: `None` only if it were.
        let _slot = self.slots.clone().acquire_owned().await.ok();
        let event = event_of(input);
        let full = set.full_budget();
        let inline = Budget {
            fuel: INLINE_FUEL.min(full.fuel),
            ticks: INLINE_TICKS.min(full.ticks),
            inline: true,
        };
        let outcome = match set.call(name, &event, inline).0 {
            Err((FailureKind::Timeout | FailureKind::OutOfFuel, _))
                if inline.fuel < full.fuel || inline.ticks < full.ticks =>
            {
                let (set, name) = (set.clone(), name.to_owned());
                self.heavy
                    .run(move || set.call(&name, &event, full).0)
                    .await
                    .unwrap_or_else(|| {
                        Err((FailureKind::Trap, "the call's thread panicked".into()))
                    })
            }
            other => other,
        };
        self.count(name, &outcome);
        failed_as(name, outcome)
    }
}

impl Transformers for TransformerHost {
    fn transform(&self, name: &str, input: TransformInput) -> Transforming<'_> {
        let set = self.current();
        let name = name.to_owned();
        Box::pin(async move {
            let Some((input, shared)) = set.given(&name, input) else {
                return Err(TransformError::Missing(name));
            };
            if !shared {
                return self.run(&set, &name, input).await;
            }
            // The same request for every endpoint: the first delivery of the event calls, the
            // others take its answer (a failure is not kept: each of them then calls itself).
            let slot = set.shared.slot(&(name.clone(), input.id.clone()));
            slot.get_or_try_init(|| self.run(&set, &name, input))
                .await
                .cloned()
        })
    }
}

/// What a call's outcome means for a delivery.
fn failed_as(name: &str, outcome: Outcome) -> Result<Rendered, TransformError> {
    match outcome {
        Ok(Ok(rendered)) => Ok(rendered),
        Ok(Err(reason)) => Err(TransformError::Failed {
            kind: "error",
            reason: format!("transformer '{name}': {reason}"),
        }),
        Err((kind, detail)) => {
            tracing::warn!(transformer = %name, kind = kind.as_str(), %detail, "transformer failed");
            let reason = match kind {
                // The deadline, fuel or memory ran out: the kind says it all.
                FailureKind::Timeout | FailureKind::OutOfFuel | FailureKind::OutOfMemory => {
                    format!("transformer '{name}' failed ({})", kind.as_str())
                }
                FailureKind::Trap | FailureKind::MalformedAnswer => {
                    format!("transformer '{name}' failed ({}): {detail}", kind.as_str())
                }
            };
            Err(TransformError::Failed {
                kind: kind.label(),
                reason,
            })
        }
    }
}

/// The record the plugin gets.
fn event_of(input: TransformInput) -> Event {
    Event {
        timestamp: crate::time::rfc3339(input.created_at_ms),
        id: input.id,
        event_type: input.event_type,
        payload: input.data,
        endpoint_name: input.endpoint_name,
    }
}

impl TransformerSet {
    fn load(
        engine: &Engine,
        ticker: &Arc<Ticker>,
        limits: &PluginLimits,
        configs: &[TransformerConfig],
    ) -> Result<Self, LoadError> {
        let ticking = (!configs.is_empty()).then(|| ticker.keep_ticking());
        let mut transformers = HashMap::new();
        for config in configs {
            transformers.insert(config.name.clone(), load_one(engine, limits, config)?);
        }
        Ok(Self {
            engine: engine.clone(),
            limits: limits.clone(),
            transformers,
            shared: Bodies::default(),
            _ticking: ticking,
        })
    }

    /// The transformers' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.transformers.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn has(&self, name: &str) -> bool {
        self.transformers.contains_key(name)
    }

    /// Whether transformer `name` gets the endpoint's name (it does not say it leaves it
    /// unused); `None` if there is no such transformer.
    pub fn per_endpoint(&self, name: &str) -> Option<bool> {
        self.transformers.get(name).map(|t| t.per_endpoint)
    }

    /// `input` as transformer `name` is given it (the endpoint's name withheld from one that
    /// leaves it unused), and whether its answer serves every endpoint of the event; `None` if
    /// there is no such transformer.
    fn given(&self, name: &str, mut input: TransformInput) -> Option<(TransformInput, bool)> {
        let shared = !self.per_endpoint(name)?;
        if shared {
            input.endpoint_name = String::new();
        }
        Some((input, shared))
    }

    fn full_budget(&self) -> Budget {
        Budget {
            fuel: self.limits.fuel,
            ticks: deadline_ticks(&self.limits),
            inline: false,
        }
    }

    /// Runs transformer `name` with its full budget, blocking (up to its deadline): for
    /// `hookd plugin transform`. Also returns the fuel the call used.
    pub fn transform_blocking(
        &self,
        name: &str,
        input: TransformInput,
    ) -> (Result<Rendered, TransformError>, u64) {
        let Some((input, _)) = self.given(name, input) else {
            return (Err(TransformError::Missing(name.to_owned())), 0);
        };
        let (outcome, fuel) = self.call(name, &event_of(input), self.full_budget());
        (failed_as(name, outcome), fuel)
    }

    /// One bounded call in a fresh instance; the fuel it used.
    fn call(&self, name: &str, event: &Event, budget: Budget) -> (Outcome, u64) {
        let Some(t) = self.transformers.get(name) else {
            return (
                Err((FailureKind::Trap, format!("no transformer '{name}'"))),
                0,
            );
        };
        let mut store = new_store(&self.engine, &self.limits, 1);
        arm(&mut store, budget.fuel, budget.ticks);
        let answer = t
            .pre
            .instantiate(&mut store)
            .and_then(|bindings| bindings.call_transform(&mut store, event, &t.settings));
        let used = budget.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let outcome = match answer {
            Ok(answer) => {
                let answer = answer.map(|r| (r.body, r.content_type, r.headers));
                crate::parse::transform_answer(answer)
                    .map_err(|why| (FailureKind::MalformedAnswer, why))
            }
            Err(e) => {
                let kind = classify(&e, store.data());
                // The trap itself, not wasmtime's backtrace: this goes to the attempt log.
                let detail = match e.downcast_ref::<wasmtime::Trap>() {
                    Some(trap) => trap.to_string(),
                    None => e.root_cause().to_string(),
                };
                Err((kind, detail))
            }
        };
        (outcome, used)
    }
}

/// Loads one transformer (see [`load`]).
fn load_one(
    engine: &Engine,
    limits: &PluginLimits,
    config: &TransformerConfig,
) -> Result<Loaded, LoadError> {
    let mut per_endpoint = true;
    let pre = load(
        engine,
        limits,
        (&config.name, &config.path),
        "transformer",
        TransformerPre::new,
        |pre, store| {
            let instance = pre.instance_pre().instantiate(&mut *store)?;
            per_endpoint = uses_endpoint_name(&instance, store)?;
            Ok(())
        },
    )?;
    Ok(Loaded {
        settings: config.settings.clone(),
        pre,
        per_endpoint,
    })
}

/// What a loaded transformer answers to `uses-endpoint-name` (the world
/// `shared-transformer`); `true` when it does not export it.
fn uses_endpoint_name(
    instance: &wasmtime::component::Instance,
    store: &mut wasmtime::Store<super::CallState>,
) -> wasmtime::Result<bool> {
    let Some(index) = instance.get_export_index(&mut *store, None, "uses-endpoint-name") else {
        return Ok(true);
    };
    let func = instance
        .get_typed_func::<(), (bool,)>(&mut *store, &index)
        .map_err(|e| e.context("its export uses-endpoint-name must be func() -> bool"))?;
    Ok(func.call(&mut *store, ())?.0)
}

/// A one-transformer host for `hookd plugin transform`: compiled afresh, with no cache.
///
/// # Errors
/// As [`TransformerHost::new`].
pub fn single(
    path: &Path,
    settings: String,
    limits: &PluginLimits,
) -> Result<(String, Arc<TransformerSet>), LoadError> {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|n| crate::parse::is_plugin_name(n))
        .unwrap_or_else(|| "transformer".into());
    let (engine, ticker) = start(None, limits, 2, &name)?;
    let config = TransformerConfig {
        name: name.clone(),
        path: path.to_owned(),
        settings,
    };
    let set = TransformerSet::load(&engine, &ticker, limits, &[config])?;
    Ok((name, Arc::new(set)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_outcome_is_a_failure_kind_label_or_ok_or_error() {
        use super::super::FailureKind::*;
        let kinds = [Trap, Timeout, OutOfFuel, OutOfMemory, MalformedAnswer];
        let labels: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
        assert_eq!(super::OUTCOMES[2..], labels[..]);
    }
}
