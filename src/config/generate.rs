//! The `fieldflow generate` job: sample a trained model (from `fieldflow train`) into a native
//! HDF5 file, optionally enforcing hard constraints.
//!
//! ```toml
//! [sampler]                     # how fields are drawn: the library's `SamplerSpec`
//! method = "auto"               # auto | plain | project | pcfm | eci | stochastic
//! solver = "heun"               # the ODE solver (plain, project) and PCFM's predictor
//! steps = 20
//! band_limit = 8                # optional
//! pcfm = { anchor = "state" }   # each method's own parameters, in its own table
//! eci = { mixing = 1 }
//! stochastic = { threshold = 0.2 }
//! [constraint]                  # the library's `ConstraintSpec`
//! kind = "darcy"                # none | divergence_free | darcy
//! darcy = { forcing = 1.0, projection = "pair" }
//! mean = [0.0, 0.0]             # stacked with `kind`; also kinetic_energy, observe
//! ```
//!
//! A method's parameters live in the table named after it, so a parameter of another method
//! cannot be written (it is an unknown key), and `--set sampler.method=...` switches methods
//! without touching the others' settings. `method = "auto"` (the default) samples plainly when
//! nothing is constrained and with PCFM otherwise. [`GenerateConfig::sampler_spec`] and
//! [`GenerateConfig::constraint_spec`] turn the sections into the library's descriptions; the
//! sampling itself is [`crate::sample::Sampler`].
//!
//! Earlier spellings are accepted with a warning naming the new key ([`migrate`]): `[solver]`
//! (`method` → `sampler.solver`, or `sampler.method = "stochastic"`; `steps`, `band_limit` →
//! `sampler.*`; `renoise_threshold` → `sampler.stochastic.threshold`), `constraint.method` (→
//! `sampler.method`), `constraint.anchor` (→ `sampler.pcfm.anchor`), `constraint.mixing` (→
//! `sampler.eci.mixing`), `constraint.darcy_forcing` and `constraint.darcy_projection` (→
//! `constraint.darcy.forcing`, `constraint.darcy.projection`).
//!
//! Length: 548 lines of code, 104 of tests; kept together as one subject (the generate schema and the rewriting of its earlier spellings).

use std::path::PathBuf;

use fieldflow_datasets::Dtype;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Source, out_of_range};
use crate::sample::pcfm::Anchor;
use crate::sample::{ConstraintSpec, DarcyProjection, Method, Observation, PdeConstraint, SamplerSpec, Solver};

/// The `[model]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenModelConfig {
    /// A run directory of `fieldflow train` (its newest checkpoint is used) or one checkpoint
    /// directory (`.../checkpoints/step-NNNNNNNN`).
    pub run_dir: PathBuf,
    /// Sample with the EMA weights when the checkpoint has them.
    #[serde(default = "default_true")]
    pub ema: bool,
}

fn default_true() -> bool {
    true
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// Sampling methods by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    /// `plain` when nothing is constrained, `pcfm` otherwise.
    #[default]
    Auto,
    /// Integrate the flow ODE with `solver`; no constraint.
    Plain,
    /// Integrate with `solver`, then project once onto the constraints.
    Project,
    /// PCFM: shoot with one step of `solver`, project, interpolate back (`[sampler.pcfm]`).
    Pcfm,
    /// ECI: extrapolate–correct–interpolate (`[sampler.eci]`).
    Eci,
    /// PBFM's stochastic sampler (`[sampler.stochastic]`); with a constraint, projected once after.
    Stochastic,
}

/// `[sampler.pcfm]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PcfmConfig {
    /// Where each step interpolates back from: source (the initial noise, the paper's) | state
    /// (the noise the state implies: the solver's own step plus the projection's correction).
    pub anchor: Anchor,
}

/// `[sampler.eci]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EciConfig {
    /// Extrapolate–correct–interpolate iterations per step (at least 1).
    pub mixing: usize,
}

impl Default for EciConfig {
    fn default() -> Self {
        Self { mixing: 1 }
    }
}

/// `[sampler.stochastic]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StochasticConfig {
    /// Re-noise after the steps that start before this time, in [0, 1] (PBFM's reference code:
    /// 0.2; 0 is plain Euler).
    pub threshold: f64,
}

impl Default for StochasticConfig {
    fn default() -> Self {
        Self { threshold: 0.2 }
    }
}

/// The `[sampler]` section; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    /// auto | plain | project | pcfm | eci | stochastic.
    pub method: MethodName,
    /// euler | midpoint | heun | rk4: the ODE solver of `plain` and `project`, the predictor of
    /// `pcfm` (ECI and the stochastic sampler take Euler-type steps of their own).
    pub solver: Solver,
    /// Uniform steps from t = 0 (noise) to t = 1 (data).
    pub steps: usize,
    /// Keep only the Fourier modes `|m_x|, |m_y| ≤ band_limit` of the generated fields (absent:
    /// all): an orthogonal projection that commutes with the divergence-free one, counted in
    /// modes of the periodic domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band_limit: Option<usize>,
    /// PCFM's parameters.
    #[serde(skip_serializing_if = "is_default")]
    pub pcfm: PcfmConfig,
    /// ECI's parameters.
    #[serde(skip_serializing_if = "is_default")]
    pub eci: EciConfig,
    /// The stochastic sampler's parameters.
    #[serde(skip_serializing_if = "is_default")]
    pub stochastic: StochasticConfig,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            method: MethodName::Auto,
            solver: Solver::Heun,
            steps: 50,
            band_limit: None,
            pcfm: PcfmConfig::default(),
            eci: EciConfig::default(),
            stochastic: StochasticConfig::default(),
        }
    }
}

/// PDE constraints by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConstraintKind {
    /// None (the stacked constraints may still be given).
    #[default]
    None,
    /// `∇·u = 0` for a model of the channels `[u, v]`.
    DivergenceFree,
    /// The discrete Darcy equation `−∇·(a∇u) = f` (zero Dirichlet values) on a generated pair
    /// `(a, u)` (a model trained on `darcy.output = "pair"` data); `[constraint.darcy]`.
    Darcy,
}

/// `[constraint.darcy]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DarcyConstraintConfig {
    /// The constant forcing `f`.
    pub forcing: f64,
    /// pair (Gauss–Newton on `(a, u)`: the nearest pair) | solve (keep the generated `a`, solve
    /// for `u`: exact in one step, needs `a > 0`).
    pub projection: DarcyProjection,
}

impl Default for DarcyConstraintConfig {
    fn default() -> Self {
        Self { forcing: 1.0, projection: DarcyProjection::Pair }
    }
}

/// The `[constraint]` section: the PDE constraint and the constraints stacked with it, in this
/// order (Gauss–Newton projection of the stack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConstraintConfig {
    /// none | divergence_free | darcy.
    pub kind: ConstraintKind,
    /// The Darcy constraint's parameters.
    #[serde(skip_serializing_if = "is_default")]
    pub darcy: DarcyConstraintConfig,
    /// Fixed mean of each channel, in data units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f64>>,
    /// Fixed kinetic energy `½ ∫ (u² + v²) dx dy` of a velocity model (nonlinear).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinetic_energy: Option<f64>,
    /// Observed values pinned on every `stride`-th grid point (all channels), from one sample of
    /// a file on the generation grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observe: Option<ObserveConfig>,
}

impl ConstraintConfig {
    /// Whether any constraint is asked for.
    pub fn any(&self) -> bool {
        self.kind != ConstraintKind::None
            || self.mean.is_some()
            || self.kinetic_energy.is_some()
            || self.observe.is_some()
    }
}

/// The `[preview]` section: PNG pictures written beside the output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreviewConfig {
    /// Samples drawn in the field previews (`<output>-vorticity.png`, `<output>-speed.png` for
    /// velocity models, else `<output>-<channel>.png`); 0 writes no pictures at all.
    pub samples: usize,
    /// Fields (any readable HDF5 file) whose mean energy spectrum `<output>-spectrum.png` shows
    /// beside the generated one; absent: the generated spectrum alone. A relative path is taken
    /// from the working directory.
    pub reference: Option<PathBuf>,
}

impl Default for PreviewConfig {
    fn default() -> Self {
        Self { samples: 4, reference: None }
    }
}

/// `[constraint] observe = { path = "...", sample = 0, stride = 8 }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserveConfig {
    /// Any readable HDF5 file on the generation grid with the model's channels.
    pub path: PathBuf,
    /// The observed sample.
    #[serde(default)]
    pub sample: usize,
    /// Grid points between observations, in x and y.
    #[serde(default = "default_stride")]
    pub stride: usize,
}

fn default_stride() -> usize {
    8
}

/// The `[output]` section of a generate job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenOutputConfig {
    /// The HDF5 file to write (an `.xdmf` sidecar is written beside it).
    pub path: PathBuf,
    /// Precision on disk (f64 keeps a projected divergence at round-off).
    #[serde(default = "default_f64")]
    pub dtype: Dtype,
    /// gzip level 0–9; absent for no compression.
    #[serde(default)]
    pub gzip: Option<u8>,
}

fn default_f64() -> Dtype {
    Dtype::F64
}

/// A `generate` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// Number of samples.
    pub samples: u64,
    /// Samples integrated together.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Seed of the source samples: sample `i` starts from the stream `(seed, i)`.
    #[serde(default)]
    pub seed: u64,
    /// Grid points in x (absent: the training grid); y keeps the training aspect ratio.
    #[serde(default)]
    pub resolution: Option<usize>,
    /// The trained model.
    pub model: GenModelConfig,
    /// How fields are drawn.
    #[serde(default)]
    pub sampler: SamplerConfig,
    /// The hard constraints.
    #[serde(default)]
    pub constraint: ConstraintConfig,
    /// The output file.
    pub output: GenOutputConfig,
    /// PNG previews.
    #[serde(default)]
    pub preview: PreviewConfig,
}

fn default_batch() -> usize {
    16
}

impl GenerateConfig {
    /// The method `sampler.method` names, with `auto` resolved.
    pub fn method(&self) -> MethodName {
        match (self.sampler.method, self.constraint.any()) {
            (MethodName::Auto, false) => MethodName::Plain,
            (MethodName::Auto, true) => MethodName::Pcfm,
            (m, _) => m,
        }
    }

    /// Checks ranges and that the method fits the constraints.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] / [`ConfigError::InvalidValue`] naming the key.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        let invalid =
            |key: &str, message: String| ConfigError::InvalidValue { path: source.clone(), key: key.into(), message };
        let s = &self.sampler;
        if self.samples == 0 {
            return Err(out_of_range(source, "samples", 0, "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(out_of_range(source, "batch", 0, "must be at least 1"));
        }
        if s.steps == 0 {
            return Err(out_of_range(source, "sampler.steps", 0, "must be at least 1"));
        }
        if s.band_limit == Some(0) {
            return Err(out_of_range(
                source,
                "sampler.band_limit",
                0,
                "must be at least 1 (remove the key for no limit)",
            ));
        }
        if let Some(n) = self.resolution
            && !(n >= 4 && n.is_multiple_of(2))
        {
            return Err(out_of_range(source, "resolution", n, "must be even and at least 4"));
        }
        if let Solver::Dopri5(_) = s.solver {
            return Err(invalid("sampler.solver", "must be a fixed-step solver: euler, midpoint, heun or rk4".into()));
        }
        if s.eci.mixing == 0 {
            return Err(out_of_range(source, "sampler.eci.mixing", 0, "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&s.stochastic.threshold) {
            return Err(out_of_range(
                source,
                "sampler.stochastic.threshold",
                s.stochastic.threshold,
                "must be in [0, 1]",
            ));
        }
        match (self.method(), self.constraint.any()) {
            (MethodName::Plain, true) => {
                return Err(invalid(
                    "sampler.method",
                    "\"plain\" enforces no constraint, but [constraint] asks for one: use \"pcfm\", \"project\", \
                     \"eci\" or \"auto\""
                        .into(),
                ));
            }
            (m @ (MethodName::Project | MethodName::Pcfm | MethodName::Eci), false) => {
                return Err(invalid(
                    "sampler.method",
                    format!(
                        "{m:?} enforces a constraint, but [constraint] asks for none: use \"plain\" or \"auto\", or \
                         add a constraint"
                    )
                    .to_lowercase(),
                ));
            }
            _ => {}
        }
        let c = &self.constraint;
        if !c.darcy.forcing.is_finite() {
            return Err(out_of_range(source, "constraint.darcy.forcing", c.darcy.forcing, "must be finite"));
        }
        if let Some(e) = c.kinetic_energy
            && !(e.is_finite() && e > 0.0)
        {
            return Err(out_of_range(source, "constraint.kinetic_energy", e, "must be finite and positive"));
        }
        if let Some(m) = c.mean.as_ref().and_then(|mean| mean.iter().find(|m| !m.is_finite())) {
            return Err(out_of_range(source, "constraint.mean", m, "must be finite"));
        }
        if let Some(o) = &c.observe
            && o.stride == 0
        {
            return Err(out_of_range(source, "constraint.observe.stride", 0, "must be at least 1"));
        }
        if let Some(level) = self.output.gzip
            && level > 9
        {
            return Err(out_of_range(source, "output.gzip", level, "must be between 0 and 9"));
        }
        Ok(())
    }

    /// The sampling pipeline this config describes (checked by [`GenerateConfig::validate`]).
    pub fn sampler_spec(&self) -> SamplerSpec {
        let s = &self.sampler;
        let method = match self.method() {
            MethodName::Auto | MethodName::Plain => Method::Plain { solver: s.solver },
            MethodName::Project => Method::ProjectAfter { solver: s.solver },
            MethodName::Pcfm => Method::Pcfm { predictor: s.solver, anchor: s.pcfm.anchor },
            MethodName::Eci => Method::Eci { mixing: s.eci.mixing },
            MethodName::Stochastic => Method::Stochastic { threshold: s.stochastic.threshold },
        };
        SamplerSpec { method, steps: s.steps, band_limit: s.band_limit }
    }

    /// The constraints of `[constraint]`.
    pub fn constraint_spec(&self) -> ConstraintSpec {
        let c = &self.constraint;
        ConstraintSpec {
            pde: match c.kind {
                ConstraintKind::None => PdeConstraint::None,
                ConstraintKind::DivergenceFree => PdeConstraint::DivergenceFree,
                ConstraintKind::Darcy => {
                    PdeConstraint::Darcy { forcing: c.darcy.forcing, projection: c.darcy.projection }
                }
            },
            mean: c.mean.clone(),
            kinetic_energy: c.kinetic_energy,
            observe: c.observe.as_ref().map(|o| Observation {
                path: o.path.clone(),
                sample: o.sample,
                stride: o.stride,
            }),
        }
    }
}

/// Rewrites a generate config's earlier spellings into the current layout (see the [module
/// documentation](self)); returns one warning per key moved, naming its new spelling.
///
/// The earlier meaning is kept: `constraint.method` applied only when something was constrained
/// (plain sampling otherwise), and `solver.method = "stochastic"` chose PBFM's sampler whatever
/// `constraint.method` said.
///
/// # Errors
/// `(key, reason)` when an earlier spelling is not of the type it had, or conflicts with the key
/// that replaces it.
pub fn migrate(table: &mut toml::Table) -> Result<Vec<String>, (String, String)> {
    use toml::Value;
    let mut warnings = Vec::new();
    let mut put = |table: &mut toml::Table, old: &str, path: &[&str], value: Value| -> Result<(), (String, String)> {
        let new = path.join(".");
        warnings.push(format!("`{old}` is now `{new}` (accepted; please update the config)"));
        let mut t = table;
        for key in &path[..path.len() - 1] {
            let entry = t.entry((*key).to_owned()).or_insert_with(|| Value::Table(toml::Table::new()));
            t = entry.as_table_mut().ok_or_else(|| ((*key).to_owned(), "must be a table".to_owned()))?;
        }
        // An explicit earlier spelling (e.g. from --set) wins over the file's current one.
        t.insert(path[path.len() - 1].to_owned(), value);
        Ok(())
    };
    let take = |table: &mut toml::Table, section: &str, key: &str| -> Option<Value> {
        let t = table.get_mut(section)?.as_table_mut()?;
        let v = t.remove(key);
        if t.is_empty() && section == "solver" {
            table.remove(section);
        }
        v
    };
    let constrained = |table: &toml::Table| {
        table.get("constraint").and_then(Value::as_table).is_some_and(|c| {
            c.get("kind").and_then(Value::as_str).is_some_and(|k| k != "none")
                || ["mean", "kinetic_energy", "observe"].iter().any(|k| c.contains_key(*k))
        })
    };
    let text = |v: &Value, key: &str| {
        v.as_str().map(str::to_owned).ok_or_else(|| (key.to_owned(), "must be a string".to_owned()))
    };
    let solver_method = take(table, "solver", "method");
    let stochastic = match &solver_method {
        Some(v) => text(v, "solver.method")? == "stochastic",
        None => false,
    };
    for key in ["steps", "band_limit"] {
        if let Some(v) = take(table, "solver", key) {
            put(table, &format!("solver.{key}"), &["sampler", key], v)?;
        }
    }
    if let Some(v) = take(table, "solver", "renoise_threshold") {
        put(table, "solver.renoise_threshold", &["sampler", "stochastic", "threshold"], v)?;
    }
    if let Some(v) = solver_method {
        if stochastic {
            put(table, "solver.method = \"stochastic\"", &["sampler", "method"], v)?;
        } else {
            put(table, "solver.method", &["sampler", "solver"], v)?;
        }
    }
    if let Some(v) = take(table, "constraint", "method") {
        let named = text(&v, "constraint.method")?;
        if stochastic && constrained(table) && named != "project" {
            return Err((
                "solver.method".into(),
                format!(
                    "\"stochastic\" re-noises the state, so it cannot carry {} corrections: use sampler.method = \
                     \"stochastic\" (projected once after sampling) or another method",
                    named.to_uppercase()
                ),
            ));
        }
        let method = if stochastic {
            "stochastic".to_owned()
        } else if constrained(table) {
            named
        } else {
            "plain".to_owned()
        };
        put(table, "constraint.method", &["sampler", "method"], Value::String(method))?;
    }
    if let Some(v) = take(table, "constraint", "anchor") {
        put(table, "constraint.anchor", &["sampler", "pcfm", "anchor"], v)?;
    }
    if let Some(v) = take(table, "constraint", "mixing") {
        put(table, "constraint.mixing", &["sampler", "eci", "mixing"], v)?;
    }
    for (old, new) in [("darcy_forcing", "forcing"), ("darcy_projection", "projection")] {
        if let Some(v) = take(table, "constraint", old) {
            put(table, &format!("constraint.{old}"), &["constraint", "darcy", new], v)?;
        }
    }
    if let Some(Value::Table(t)) = table.remove("solver")
        && let Some(key) = t.keys().next()
    {
        return Err((format!("solver.{key}"), "unknown key (the solver's keys are now in [sampler])".into()));
    }
    Ok(warnings)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::from_str_migrated;
    use crate::sample::pcfm::Anchor;

    const BASE: &str = "samples = 2\n[model]\nrun_dir = \"runs/x\"\n[output]\npath = \"x.h5\"\n";

    fn load(extra: &str) -> (GenerateConfig, Vec<String>) {
        let loaded =
            from_str_migrated::<GenerateConfig>(&format!("{BASE}{extra}"), Source("t.toml".into()), &[], migrate)
                .unwrap();
        loaded.value.validate(&loaded.source).unwrap();
        (loaded.value, loaded.warnings)
    }

    #[test]
    fn every_earlier_combination_maps_to_its_method() {
        let div = "[constraint]\nkind = \"divergence_free\"\n";
        let heun = Solver::Heun;
        let cases: Vec<(String, Method)> = vec![
            // No sampler at all: plain without a constraint, PCFM (Heun, source anchor) with one.
            (String::new(), Method::Plain { solver: heun }),
            (div.into(), Method::Pcfm { predictor: heun, anchor: Anchor::Source }),
            // The earlier [solver] / [constraint] keys.
            ("[solver]\nmethod = \"rk4\"\nsteps = 7\n".into(), Method::Plain { solver: Solver::Rk4 }),
            (
                format!("{div}method = \"pcfm\"\nanchor = \"state\"\n[solver]\nmethod = \"euler\"\n"),
                Method::Pcfm { predictor: Solver::Euler, anchor: Anchor::State },
            ),
            (
                format!("{div}method = \"project\"\n[solver]\nmethod = \"midpoint\"\n"),
                Method::ProjectAfter { solver: Solver::Midpoint },
            ),
            (format!("{div}method = \"eci\"\nmixing = 3\n"), Method::Eci { mixing: 3 }),
            // constraint.method meant nothing without a constraint.
            ("[constraint]\nkind = \"none\"\nmethod = \"eci\"\n".into(), Method::Plain { solver: heun }),
            (
                "[solver]\nmethod = \"stochastic\"\nrenoise_threshold = 0.3\n".into(),
                Method::Stochastic { threshold: 0.3 },
            ),
            (
                format!("{div}method = \"project\"\n[solver]\nmethod = \"stochastic\"\n"),
                Method::Stochastic { threshold: 0.2 },
            ),
            // The current layout.
            (
                format!("{div}[sampler]\nmethod = \"pcfm\"\nsolver = \"rk4\"\npcfm = {{ anchor = \"state\" }}\n"),
                Method::Pcfm { predictor: Solver::Rk4, anchor: Anchor::State },
            ),
            (format!("{div}[sampler]\nmethod = \"eci\"\neci = {{ mixing = 2 }}\n"), Method::Eci { mixing: 2 }),
        ];
        for (text, want) in cases {
            let (cfg, warnings) = load(&text);
            assert_eq!(cfg.sampler_spec().method, want, "{text}");
            let earlier = text.contains("[solver]") || text.contains("\nmethod") && !text.contains("[sampler]");
            assert_eq!(!warnings.is_empty(), earlier, "{text}: {warnings:?}");
        }
        let (cfg, warnings) = load("[solver]\nsteps = 7\nband_limit = 5\n");
        assert_eq!((cfg.sampler.steps, cfg.sampler.band_limit), (7, Some(5)));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let (cfg, _) = load("[constraint]\nkind = \"darcy\"\ndarcy_forcing = 2.0\ndarcy_projection = \"solve\"\n");
        assert_eq!(
            cfg.constraint_spec().pde,
            PdeConstraint::Darcy { forcing: 2.0, projection: DarcyProjection::Solve }
        );
    }

    #[test]
    fn the_effective_config_is_written_in_the_current_layout_and_loads_again() {
        let (cfg, _) = load("[constraint]\nkind = \"divergence_free\"\nmethod = \"pcfm\"\nanchor = \"state\"\n");
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("[sampler]") && !text.contains("[solver]"), "{text}");
        assert!(!text.contains("[sampler.eci]"), "default tables are not written: {text}");
        let again = from_str_migrated::<GenerateConfig>(&text, Source("t.toml".into()), &[], migrate).unwrap();
        assert!(again.warnings.is_empty(), "{:?}", again.warnings);
        assert_eq!(again.value, cfg);
    }

    #[test]
    fn impossible_and_conflicting_choices_name_the_key() {
        let bad = |extra: &str| {
            let source = Source("t.toml".into());
            match from_str_migrated::<GenerateConfig>(&format!("{BASE}{extra}"), source.clone(), &[], migrate) {
                Err(e) => e.to_string(),
                Ok(l) => l.value.validate(&source).err().map(|e| e.to_string()).unwrap_or_default(),
            }
        };
        let div = "[constraint]\nkind = \"divergence_free\"\n";
        assert!(bad(&format!("{div}[sampler]\nmethod = \"plain\"\n")).contains("`sampler.method`"));
        assert!(bad("[sampler]\nmethod = \"pcfm\"\n").contains("`sampler.method`"));
        assert!(
            bad(&format!("{div}[sampler]\nmethod = \"pcfm\"\npcfm = {{ mixing = 2 }}\n"))
                .contains("sampler.pcfm.mixing")
        );
        assert!(
            bad(&format!("{div}method = \"pcfm\"\n[solver]\nmethod = \"stochastic\"\n")).contains("`solver.method`")
        );
        assert!(bad("[solver]\nmethod = 3\n").contains("`solver.method`"));
        assert!(bad("[solver]\nstpes = 3\n").contains("solver.stpes"));
    }
}
