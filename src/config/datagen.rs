//! The `datagen` job: which PDE, how many samples, and where to write them.
//!
//! ```toml
//! pde = "ns2d"            # ns2d | kolmogorov | darcy
//! samples = 1000
//! seed = 0
//! batch = 16              # samples generated in parallel before each write
//! [output]
//! path = "data/ns2d.h5"
//! dtype = "f32"           # f32 | f64
//! gzip = 4                # 0-9; omit for no compression
//! [ns2d]                  # the section named by `pde`; the others must be absent
//! viscosity = 1e-3
//! ```

use std::path::PathBuf;

use fieldflow_datasets::Dtype;
use fieldflow_datasets::generate::{
    CoefficientFamily, DarcyParams, Generator, KolmogorovGenerator, KolmogorovParams, Ns2dGenerator, Ns2dParams,
    NsOutput,
};
use fieldflow_pde::darcy::{FnoCoefficient, Forcing as DarcyForcing, PdebenchCoefficient};
use fieldflow_pde::kolmogorov::Kolmogorov;
use fieldflow_pde::navier_stokes::{Forcing, Scheme};
use fieldflow_pde::random::GrfParams;
use serde::{Deserialize, Serialize};

use super::load::{ConfigError, Source, out_of_range};

/// The PDE a data set is generated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PdeKind {
    /// 2D Navier–Stokes, FNO setting.
    Ns2d,
    /// Kolmogorov flow.
    Kolmogorov,
    /// Darcy flow.
    Darcy,
}

impl PdeKind {
    fn section(self) -> &'static str {
        match self {
            PdeKind::Ns2d => "ns2d",
            PdeKind::Kolmogorov => "kolmogorov",
            PdeKind::Darcy => "darcy",
        }
    }
}

/// The `[output]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// The HDF5 file to write (an `.xdmf` sidecar is written beside it).
    pub path: PathBuf,
    /// Precision on disk.
    #[serde(default)]
    pub dtype: Dtype,
    /// gzip level 0–9; absent for no compression.
    #[serde(default)]
    pub gzip: Option<u8>,
}

/// The `[ns2d]` section (defaults: FNO's `NavierStokes_V1e-3` setting).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ns2dConfig {
    /// Grid of the solve.
    pub solve_resolution: usize,
    /// Grid of the stored fields.
    pub resolution: usize,
    /// Viscosity.
    pub viscosity: f64,
    /// Time step.
    pub dt: f64,
    /// Target CFL number for adaptive steps (absent: fixed `dt`).
    pub cfl: Option<f64>,
    /// Scheme.
    pub scheme: Scheme,
    /// Amplitude of FNO's forcing (0 for none).
    pub forcing_amplitude: f64,
    /// Final time.
    pub t_final: f64,
    /// Stored snapshots in `(0, t_final]` (0: only the final field).
    pub snapshots: usize,
    /// Stored channels.
    pub output: NsOutput,
    /// GRF exponent of the initial vorticity.
    pub alpha: f64,
    /// GRF inverse length scale of the initial vorticity.
    pub tau: f64,
}

impl Default for Ns2dConfig {
    fn default() -> Self {
        let p = Ns2dParams::default();
        Self {
            solve_resolution: p.solve_resolution,
            resolution: p.output_resolution,
            viscosity: p.viscosity,
            dt: p.dt,
            cfl: p.cfl,
            scheme: Scheme::FnoEuler,
            forcing_amplitude: 0.1,
            t_final: p.t_final,
            snapshots: p.snapshots,
            output: NsOutput::Vorticity,
            alpha: p.initial.alpha,
            tau: p.initial.tau,
        }
    }
}

/// The `[kolmogorov]` section (defaults: Kochkov et al.).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KolmogorovConfig {
    /// Grid of the solve.
    pub solve_resolution: usize,
    /// Grid of the stored fields.
    pub resolution: usize,
    /// Viscosity.
    pub viscosity: f64,
    /// Linear drag.
    pub drag: f64,
    /// Forcing mode number on `[0, 2π)`.
    pub wavenumber: u32,
    /// Forcing amplitude.
    pub amplitude: f64,
    /// Target CFL number.
    pub cfl: f64,
    /// Largest time step.
    pub dt_max: f64,
    /// Scheme.
    pub scheme: Scheme,
    /// Spin-up time.
    pub spin_up: f64,
    /// Snapshots recorded after spin-up.
    pub snapshots: usize,
    /// Time between snapshots.
    pub interval: f64,
    /// RMS speed of the initial velocity.
    pub initial_rms: f64,
    /// Stored channels.
    pub output: NsOutput,
}

impl Default for KolmogorovConfig {
    fn default() -> Self {
        let p = KolmogorovParams::default();
        Self {
            solve_resolution: p.solve_resolution,
            resolution: p.output_resolution,
            viscosity: p.flow.viscosity,
            drag: p.flow.drag,
            wavenumber: p.flow.wavenumber,
            amplitude: p.flow.amplitude,
            cfl: p.flow.cfl,
            dt_max: p.flow.dt_max,
            scheme: Scheme::CnRk3,
            spin_up: p.spin_up,
            snapshots: p.snapshots,
            interval: p.interval,
            initial_rms: p.initial_rms,
            output: NsOutput::Velocity,
        }
    }
}

/// Darcy coefficient families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoefficientName {
    /// FNO's thresholded GRF (12 / 3).
    Fno,
    /// PDEBench-style thresholded bumps (1 / 0.1).
    Pdebench,
}

/// The `[darcy]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DarcyConfig {
    /// Nodes per side including the boundary.
    pub resolution: usize,
    /// Coefficient family.
    pub coefficient: CoefficientName,
    /// Constant right-hand side `f` (used when `forcing_right` is absent).
    pub forcing: f64,
    /// With `forcing_right`: `f = forcing` for `x < forcing_split`, `forcing_right` elsewhere.
    pub forcing_right: Option<f64>,
    /// Split position of the piecewise forcing.
    pub forcing_split: f64,
    /// solution: `u` in `/fields`, `a` in `/coefficients`; pair: `(a, u)` as the two channels of
    /// `/fields` (training data of a joint model).
    pub output: DarcyOutput,
}

/// What a Darcy data set stores in `/fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DarcyOutput {
    /// `u` (and `a` in `/coefficients`).
    #[default]
    Solution,
    /// `(a, u)`.
    Pair,
}

impl Default for DarcyConfig {
    fn default() -> Self {
        Self {
            resolution: 64,
            coefficient: CoefficientName::Fno,
            forcing: 1.0,
            forcing_right: None,
            forcing_split: 0.5,
            output: DarcyOutput::Solution,
        }
    }
}

/// A `datagen` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatagenConfig {
    /// Which PDE; its section configures it.
    pub pde: PdeKind,
    /// Number of samples.
    pub samples: u64,
    /// Seed of the per-sample random streams.
    #[serde(default)]
    pub seed: u64,
    /// Samples generated in parallel between writes.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Output file.
    pub output: OutputConfig,
    /// Navier–Stokes settings.
    #[serde(default)]
    pub ns2d: Option<Ns2dConfig>,
    /// Kolmogorov settings.
    #[serde(default)]
    pub kolmogorov: Option<KolmogorovConfig>,
    /// Darcy settings.
    #[serde(default)]
    pub darcy: Option<DarcyConfig>,
}

fn default_batch() -> usize {
    16
}

impl DatagenConfig {
    /// Checks ranges and cross-key consistency.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] / [`ConfigError::InvalidValue`] naming the key.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        if self.samples == 0 {
            return Err(out_of_range(source, "samples", self.samples, "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(out_of_range(source, "batch", self.batch, "must be at least 1"));
        }
        if let Some(level) = self.output.gzip
            && level > 9
        {
            return Err(out_of_range(source, "output.gzip", level, "must be between 0 and 9"));
        }
        let present =
            [("ns2d", self.ns2d.is_some()), ("kolmogorov", self.kolmogorov.is_some()), ("darcy", self.darcy.is_some())];
        for (name, is_present) in present {
            if is_present && name != self.pde.section() {
                return Err(ConfigError::InvalidValue {
                    path: source.clone(),
                    key: name.to_string(),
                    message: format!("section [{name}] does not apply to pde = \"{}\"; remove it", self.pde.section()),
                });
            }
        }
        let positive = |key: &str, v: f64| {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(out_of_range(source, key, v, "must be finite and positive"))
            }
        };
        let non_negative = |key: &str, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(out_of_range(source, key, v, "must be finite and non-negative"))
            }
        };
        let even = |key: &str, n: usize| {
            if n >= 4 && n.is_multiple_of(2) {
                Ok(())
            } else {
                Err(out_of_range(source, key, n, "must be even and at least 4"))
            }
        };
        match self.pde {
            PdeKind::Ns2d => {
                let c = self.ns2d.clone().unwrap_or_default();
                even("ns2d.solve_resolution", c.solve_resolution)?;
                even("ns2d.resolution", c.resolution)?;
                non_negative("ns2d.viscosity", c.viscosity)?;
                positive("ns2d.dt", c.dt)?;
                positive("ns2d.t_final", c.t_final)?;
                positive("ns2d.alpha", c.alpha)?;
                non_negative("ns2d.tau", c.tau)?;
                if !c.forcing_amplitude.is_finite() {
                    return Err(out_of_range(source, "ns2d.forcing_amplitude", c.forcing_amplitude, "must be finite"));
                }
                if let Some(cfl) = c.cfl {
                    positive("ns2d.cfl", cfl)?;
                }
            }
            PdeKind::Kolmogorov => {
                let c = self.kolmogorov.clone().unwrap_or_default();
                even("kolmogorov.solve_resolution", c.solve_resolution)?;
                even("kolmogorov.resolution", c.resolution)?;
                non_negative("kolmogorov.viscosity", c.viscosity)?;
                non_negative("kolmogorov.drag", c.drag)?;
                positive("kolmogorov.cfl", c.cfl)?;
                positive("kolmogorov.dt_max", c.dt_max)?;
                non_negative("kolmogorov.spin_up", c.spin_up)?;
                positive("kolmogorov.interval", c.interval)?;
                positive("kolmogorov.initial_rms", c.initial_rms)?;
                if c.snapshots == 0 {
                    return Err(out_of_range(source, "kolmogorov.snapshots", 0, "must be at least 1"));
                }
            }
            PdeKind::Darcy => {
                let c = self.darcy.clone().unwrap_or_default();
                if c.resolution < 3 {
                    return Err(out_of_range(source, "darcy.resolution", c.resolution, "must be at least 3"));
                }
                if !(c.forcing_split > 0.0 && c.forcing_split < 1.0) {
                    return Err(out_of_range(source, "darcy.forcing_split", c.forcing_split, "must be in (0, 1)"));
                }
            }
        }
        Ok(())
    }

    /// The generator this job describes (assumes [`Self::validate`] passed).
    ///
    /// # Errors
    /// The generator's own parameter checks, naming the parameter.
    pub fn generator(&self) -> Result<Box<dyn Generator>, fieldflow_datasets::generate::GenerateError> {
        Ok(match self.pde {
            PdeKind::Ns2d => {
                let c = self.ns2d.clone().unwrap_or_default();
                let forcing = if c.forcing_amplitude == 0.0 {
                    Forcing::None
                } else {
                    Forcing::Fno { amplitude: c.forcing_amplitude }
                };
                Box::new(Ns2dGenerator::new(Ns2dParams {
                    solve_resolution: c.solve_resolution,
                    output_resolution: c.resolution,
                    domain: 1.0,
                    viscosity: c.viscosity,
                    dt: c.dt,
                    cfl: c.cfl,
                    scheme: c.scheme,
                    forcing,
                    t_final: c.t_final,
                    snapshots: c.snapshots,
                    output: c.output,
                    initial: GrfParams { alpha: c.alpha, tau: c.tau, ..GrfParams::default() },
                })?)
            }
            PdeKind::Kolmogorov => {
                let c = self.kolmogorov.clone().unwrap_or_default();
                Box::new(KolmogorovGenerator::new(KolmogorovParams {
                    flow: Kolmogorov {
                        wavenumber: c.wavenumber,
                        amplitude: c.amplitude,
                        drag: c.drag,
                        viscosity: c.viscosity,
                        cfl: c.cfl,
                        dt_max: c.dt_max,
                        scheme: c.scheme,
                    },
                    solve_resolution: c.solve_resolution,
                    output_resolution: c.resolution,
                    spin_up: c.spin_up,
                    snapshots: c.snapshots,
                    interval: c.interval,
                    initial_rms: c.initial_rms,
                    output: c.output,
                })?)
            }
            PdeKind::Darcy => {
                let c = self.darcy.clone().unwrap_or_default();
                let coefficient = match c.coefficient {
                    CoefficientName::Fno => CoefficientFamily::Fno(FnoCoefficient::default()),
                    CoefficientName::Pdebench => CoefficientFamily::Pdebench(PdebenchCoefficient::default()),
                };
                let forcing = match c.forcing_right {
                    None => DarcyForcing::Constant(c.forcing),
                    Some(right) => DarcyForcing::Piecewise { left: c.forcing, right, split: c.forcing_split },
                };
                Box::new(fieldflow_datasets::generate::DarcyGenerator::new(DarcyParams {
                    resolution: c.resolution,
                    coefficient,
                    forcing,
                    pair: c.output == DarcyOutput::Pair,
                    ..DarcyParams::default()
                })?)
            }
        })
    }
}
