//! The generation pipeline: one [`Sampler`] value that turns a trained velocity field into fields
//! in data units, with hard constraints enforced, batch by batch into a writer.
//!
//! A network learns the velocity `ṽ(x̃, t)` of standardised fields `x̃ = (x − μ)/s`. Sampling
//! draws `x̃₀` from the source measure (sample `i` from the stream `(seed, i)`, so the batch size
//! never changes a field) and then, by [`Method`]:
//!
//! - [`Method::Plain`]: integrates `dx̃/dt = ṽ` with a fixed-step [`Solver`] and maps back,
//!   `x = μ + s ⊙ x̃₁`;
//! - [`Method::ProjectAfter`], [`Method::Pcfm`], [`Method::Eci`]: work in data units with the
//!   pushed-forward field `v(x, t) = s ⊙ ṽ((x − μ)/s, t)` from `x₀ = μ + s ⊙ x̃₀`. Both flows are
//!   the same map, and the constraint (e.g. `∇·u = 0`, which a per-channel scaling does not
//!   preserve) then holds for the fields written;
//! - [`Method::Stochastic`]: PBFM's sampler in normalised units (its re-noising draws come from
//!   the normalised source), mapped back and, when there is a constraint, projected once.
//!
//! Then an optional [`band_limit`] (an exact Fourier truncation that commutes with the Leray
//! projection). Every front end — `fieldflow generate`, the Python package — builds this value and
//! calls [`Sampler::sample`] or [`Sampler::sample_to_writer`]; none of them holds a sampling
//! algorithm.

use std::ops::Range;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor};
use fieldflow_datasets::{DatasetError, FieldWriter};
use fieldflow_pde::constraints::Constraint;
use fieldflow_pde::filter::band_limit;
use fieldflow_pde::{Grid2d, PdeError};
use ndarray::{Array4, Ix4};
use thiserror::Error;

use super::eci::{EciOptions, eci_sample};
use super::pcfm::{Anchor, PcfmError, PcfmOptions, Predictor, pcfm_sample, project_after_sampling};
use super::stochastic::{StochasticError, StochasticOptions, sample_stochastic};
use super::{SolveError, SolveOptions, Solver, VelocityField, solve};
use crate::bridge::to_array;
use crate::noise::{NoiseError, SourceSampler};
use crate::normalize::ChannelStats;
use crate::sample::project::{ConstraintError, project_array};

/// How samples are drawn and how the constraint is enforced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Integrate the flow ODE; no constraint.
    Plain {
        /// The ODE solver (fixed-step).
        solver: Solver,
    },
    /// Integrate the flow ODE, then project the result onto the constraint once.
    ProjectAfter {
        /// The ODE solver (fixed-step).
        solver: Solver,
    },
    /// PCFM (Utkarsh et al. 2025, [`super::pcfm`]): shoot, project and interpolate back at every
    /// step.
    Pcfm {
        /// The velocity each step shoots with.
        predictor: Predictor,
        /// Where each step interpolates back from.
        anchor: Anchor,
    },
    /// ECI (Cheng et al., [`super::eci`]): `mixing` extrapolate–correct–interpolate iterations per
    /// step.
    Eci {
        /// Iterations per step, at least 1.
        mixing: usize,
    },
    /// PBFM's stochastic sampler ([`super::stochastic`]), re-noised while `t < threshold`; with a
    /// constraint, the result is projected once.
    Stochastic {
        /// The re-noising threshold in `[0, 1]`.
        threshold: f64,
    },
}

impl Method {
    /// Whether this method enforces a constraint (and so needs one).
    pub fn needs_constraint(&self) -> bool {
        matches!(self, Self::ProjectAfter { .. } | Self::Pcfm { .. } | Self::Eci { .. })
    }

    /// Network evaluations per step.
    pub fn evaluations_per_step(&self) -> usize {
        let of = |s: &Solver| match s {
            Solver::Euler => 1,
            Solver::Midpoint | Solver::Heun => 2,
            Solver::Rk4 => 4,
            Solver::Dopri5(_) => 6,
        };
        match self {
            Self::Plain { solver } | Self::ProjectAfter { solver } => of(solver),
            Self::Pcfm { predictor, .. } => of(predictor),
            Self::Stochastic { .. } => 1,
            Self::Eci { mixing } => *mixing,
        }
    }
}

/// The config-independent description of a sampling job: what [`Sampler::new`] needs besides
/// the model's grid, source measure, normalisation and constraint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSpec {
    /// The method.
    pub method: Method,
    /// Uniform steps from `t = 0` to `t = 1`.
    pub steps: usize,
    /// Keep only the Fourier modes `|m_x|, |m_y| ≤ band_limit` of the results.
    pub band_limit: Option<usize>,
}

/// What can go wrong in the pipeline; each names the batch at fault.
#[derive(Debug, Error)]
pub enum SamplerError {
    /// An unusable description (e.g. PCFM without a constraint, zero steps).
    #[error("{key}: {reason}")]
    Spec {
        /// The field of [`SamplerSpec`] (or the constraint) at fault.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Drawing the source samples failed.
    #[error("source samples {start}..{end}: {source}")]
    Noise {
        /// First sample of the batch.
        start: u64,
        /// End of the batch.
        end: u64,
        /// The cause.
        #[source]
        source: NoiseError,
    },
    /// Integrating or enforcing the constraint failed.
    #[error("sampling {start}..{end}: {cause}")]
    Sample {
        /// First sample of the batch.
        start: u64,
        /// End of the batch.
        end: u64,
        /// The cause, as text (solver, PCFM, projection and read-back errors).
        cause: String,
    },
    /// The band limit or another field operation failed.
    #[error(transparent)]
    Pde(#[from] PdeError),
    /// Writing failed.
    #[error(transparent)]
    Write(#[from] DatasetError),
}

fn failed(range: &Range<u64>, cause: impl std::fmt::Display) -> SamplerError {
    SamplerError::Sample { start: range.start, end: range.end, cause: cause.to_string() }
}

/// The generation pipeline; see the [module documentation](self).
#[derive(Debug)]
pub struct Sampler {
    spec: SamplerSpec,
    grid: Grid2d,
    source: SourceSampler,
    constraint: Option<Box<dyn Constraint>>,
    stats: ChannelStats,
}

/// What [`Sampler::sample_to_writer`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamReport {
    /// Samples appended.
    pub samples: u64,
    /// Wall time spent appending to the writer.
    pub writing: Duration,
}

impl Sampler {
    /// The pipeline for fields on `grid` drawn from `source`, in the units `stats` (the training
    /// normalisation) maps back to, with an optional constraint.
    ///
    /// # Errors
    /// [`SamplerError::Spec`] for zero steps or mixing iterations, a threshold outside `[0, 1]`,
    /// an adaptive solver, a band limit of 0, a method that enforces a constraint without one or
    /// plain sampling with one, a constraint or normalisation whose shape is not the source's.
    pub fn new(
        spec: SamplerSpec,
        grid: Grid2d,
        source: SourceSampler,
        constraint: Option<Box<dyn Constraint>>,
        stats: ChannelStats,
    ) -> Result<Self, SamplerError> {
        let bad = |key, reason: &str| Err(SamplerError::Spec { key, reason: reason.into() });
        if spec.steps == 0 {
            return bad("steps", "must be at least 1");
        }
        if spec.band_limit == Some(0) {
            return bad("band_limit", "must be at least 1");
        }
        match spec.method {
            Method::Plain { solver: Solver::Dopri5(_) } | Method::ProjectAfter { solver: Solver::Dopri5(_) } => {
                return bad("method", "takes a fixed-step solver (euler, midpoint, heun, rk4)");
            }
            Method::Pcfm { predictor: Solver::Dopri5(_), .. } => {
                return bad("predictor", "takes a fixed-step solver (euler, midpoint, heun, rk4)");
            }
            Method::Eci { mixing: 0 } => return bad("mixing", "must be at least 1"),
            Method::Stochastic { threshold } if !(0.0..=1.0).contains(&threshold) => {
                return bad("threshold", "must be in [0, 1]");
            }
            _ => {}
        }
        let channels = source.channels();
        match (&constraint, spec.method.needs_constraint()) {
            (None, true) => return bad("constraint", "this method enforces a constraint, but none is given"),
            (Some(_), false) if matches!(spec.method, Method::Plain { .. }) => {
                return bad("constraint", "plain sampling enforces no constraint: use ProjectAfter, Pcfm or Eci");
            }
            (Some(c), _) if c.shape() != [channels, grid.ny(), grid.nx()] => {
                return Err(SamplerError::Spec {
                    key: "constraint",
                    reason: format!(
                        "applies to fields of shape {:?}, the samples are {:?}",
                        c.shape(),
                        [channels, grid.ny(), grid.nx()]
                    ),
                });
            }
            _ => {}
        }
        if stats.channels() != channels || stats.std.len() != channels {
            return Err(SamplerError::Spec {
                key: "normalization",
                reason: format!("has {} channels, the source has {channels}", stats.channels()),
            });
        }
        if let Err(e) = stats.mean_on(grid.ny(), grid.nx()) {
            return Err(SamplerError::Spec { key: "normalization", reason: e.to_string() });
        }
        Ok(Self { spec, grid, source, constraint, stats })
    }

    /// The description this sampler was built from.
    pub fn spec(&self) -> &SamplerSpec {
        &self.spec
    }

    /// The grid of the samples.
    pub fn grid(&self) -> &Grid2d {
        &self.grid
    }

    /// The constraint enforced, if any.
    pub fn constraint(&self) -> Option<&dyn Constraint> {
        self.constraint.as_deref()
    }

    /// Samples `indices` of the seed's streams in one batch: fields in data units, `[n, C, ny,
    /// nx]`, `f64`. `network` is the velocity of standardised fields.
    ///
    /// # Errors
    /// [`SamplerError`] naming the batch.
    pub fn sample<F>(
        &self,
        network: &F,
        seed: u64,
        indices: Range<u64>,
        device: &Device,
    ) -> Result<Array4<f64>, SamplerError>
    where
        F: VelocityField<4> + ?Sized,
    {
        let x0 = self.source.sample(seed, indices.clone(), device).map_err(|source| SamplerError::Noise {
            start: indices.start,
            end: indices.end,
            source,
        })?;
        self.sample_from(network, x0, seed, indices)
    }

    /// Samples from given standardised source samples `x0` (`[n, C, ny, nx]`), which are sample
    /// indices `indices` of the stream `seed` (the stochastic sampler draws its re-noising from
    /// them).
    ///
    /// # Errors
    /// [`SamplerError`] naming the batch.
    pub fn sample_from<F>(
        &self,
        network: &F,
        x0: Tensor<4>,
        seed: u64,
        indices: Range<u64>,
    ) -> Result<Array4<f64>, SamplerError>
    where
        F: VelocityField<4> + ?Sized,
    {
        let steps = self.spec.steps;
        let [_, _, h, w] = x0.dims();
        let (mean, scale) = self.stats.tensors(h, w, &x0.device()).map_err(|e| failed(&indices, e))?;
        let physical =
            |y: Tensor<4>, t: f64| network.velocity((y - mean.clone()).div(scale.clone()), t).mul(scale.clone());
        let to_data = |x1: Tensor<4>| -> Result<Array4<f64>, SamplerError> {
            let mut x = to_array(x1)
                .map_err(|e| failed(&indices, format!("reading samples back: {e}")))?
                .into_dimensionality::<Ix4>()
                .map_err(|e| failed(&indices, e))?;
            self.stats.denormalize(&mut x).map_err(|e| failed(&indices, e))?;
            Ok(x)
        };
        let pcfm = |e: PcfmError| failed(&indices, e);
        let mut fields = match (self.spec.method, self.constraint.as_deref()) {
            (Method::Plain { solver }, _) => {
                let x1 = solve(network, x0, &solver, &SolveOptions::uniform(steps))
                    .map_err(|e: SolveError| failed(&indices, e))?
                    .x;
                to_data(x1)?
            }
            (Method::Stochastic { threshold }, constraint) => {
                let options = StochasticOptions { steps, threshold, seed, first_index: indices.start };
                let x1 = sample_stochastic(network, x0, &self.source, &options)
                    .map_err(|e: StochasticError| failed(&indices, e))?;
                match constraint {
                    None => to_data(x1)?,
                    Some(c) => project_array(c, x1.mul(scale.clone()) + mean.clone())
                        .map_err(|e: ConstraintError| failed(&indices, e))?,
                }
            }
            (method, Some(c)) => {
                let y0 = x0.mul(scale.clone()) + mean.clone();
                match method {
                    Method::Pcfm { predictor, anchor } => {
                        let options = PcfmOptions { predictor, anchor, ..PcfmOptions::uniform(steps) };
                        pcfm_sample(&physical, c, y0, &options).map_err(pcfm)?
                    }
                    Method::Eci { mixing } => {
                        let options = EciOptions { mixing, ..EciOptions::uniform(steps) };
                        eci_sample(&physical, c, y0, &options).map_err(pcfm)?
                    }
                    Method::ProjectAfter { solver } => {
                        project_after_sampling(&physical, c, y0, &solver, &SolveOptions::uniform(steps))
                            .map_err(pcfm)?
                    }
                    Method::Plain { .. } | Method::Stochastic { .. } => {
                        return Err(failed(&indices, "unreachable method"));
                    }
                }
            }
            (_, None) => return Err(failed(&indices, "this method needs a constraint")),
        };
        if let Some(m) = self.spec.band_limit {
            band_limit(&self.grid, fields.view_mut(), m)?;
        }
        Ok(fields)
    }

    /// Samples `indices` of the seed's streams in batches of `batch` and appends them to `writer`;
    /// `observe(end, fields)` sees each batch before it is written (reports, previews, progress).
    ///
    /// # Errors
    /// [`SamplerError`] naming the batch at fault, or the observer's error; nothing further is
    /// appended after an error (the writer's file stays temporary until it is finished).
    #[allow(clippy::too_many_arguments)]
    pub fn sample_to_writer<F, E>(
        &self,
        network: &F,
        seed: u64,
        indices: Range<u64>,
        batch: usize,
        device: &Device,
        writer: &mut FieldWriter,
        mut observe: impl FnMut(u64, &Array4<f64>) -> Result<(), E>,
    ) -> Result<StreamReport, E>
    where
        F: VelocityField<4> + ?Sized,
        E: From<SamplerError>,
    {
        if batch == 0 {
            return Err(SamplerError::Spec { key: "batch", reason: "must be at least 1".into() }.into());
        }
        let mut writing = Duration::ZERO;
        let mut start = indices.start;
        while start < indices.end {
            let end = (start + batch as u64).min(indices.end);
            let fields = self.sample(network, seed, start..end, device)?;
            observe(end, &fields)?;
            let clock = Instant::now();
            writer.append(fields.view(), None).map_err(SamplerError::from)?;
            writing += clock.elapsed();
            start = end;
        }
        Ok(StreamReport { samples: indices.end - indices.start, writing })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::noise::SourceMeasure;
    use fieldflow_datasets::{Dtype, FieldReader, FileSpec, Grid, Metadata, WriterOptions};
    use fieldflow_pde::constraints::DivergenceFree;
    use fieldflow_pde::residuals::divergence_residual;
    use ndarray::Axis;

    fn unit() -> ChannelStats {
        ChannelStats::new(vec![0.0; 2], vec![1.0; 2])
    }

    fn spec(method: Method, steps: usize) -> SamplerSpec {
        SamplerSpec { method, steps, band_limit: None }
    }

    #[test]
    fn streamed_samples_equal_one_big_batch_and_the_exact_flow() {
        // v(x, t) = x integrates to x(1) = e·x(0), and with mean μ and scale s the file must hold
        // μ + s e x0 for every sample, whatever the batch size: sample i depends only on (seed, i).
        let device = Device::default();
        let grid = Grid2d::square(8, 1.0).unwrap();
        let source = SourceMeasure::White.sampler(&grid, 2).unwrap();
        let stats = ChannelStats::new(vec![1.0, -2.0], vec![0.5, 3.0]);
        let sampler =
            Sampler::new(spec(Method::Plain { solver: Solver::Rk4 }, 16), grid, source.clone(), None, stats).unwrap();
        let field = |x: Tensor<4>, _t: f64| x;
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for batch in [3, 7] {
            let path = dir.path().join(format!("s{batch}.h5"));
            let spec = FileSpec::new(Metadata::new("test", &["u", "v"]), Grid::periodic(8, 8, 1.0, 1.0), Dtype::F64);
            let mut writer = FieldWriter::create(&path, spec, &WriterOptions::default()).unwrap();
            let mut seen = Vec::new();
            let report = sampler
                .sample_to_writer(&field, 5, 0..7, batch, &device, &mut writer, |end, _| {
                    seen.push(end);
                    Ok::<(), SamplerError>(())
                })
                .unwrap();
            writer.finish().unwrap();
            assert_eq!((*seen.last().unwrap(), report.samples), (7, 7));
            files.push(FieldReader::open(&path).unwrap().read_range(0..7).unwrap());
        }
        assert_eq!(files[0], files[1]);
        let x0 = source.sample_array(5, 0..7).unwrap().mapv(|v| f64::from(v as f32));
        let mut exact = x0.mapv(|v| v * std::f64::consts::E);
        for (c, (m, s)) in [(1.0, 0.5), (-2.0, 3.0)].into_iter().enumerate() {
            exact.index_axis_mut(Axis(1), c).mapv_inplace(|v| m + s * v);
        }
        let err = (&files[0] - &exact).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err < 1e-5 * exact.iter().fold(0.0_f64, |m, v| m.max(v.abs())), "{err}");
    }

    #[test]
    fn constrained_methods_write_divergence_free_fields_in_data_units() {
        // A field that is not divergence-free at all, and a per-channel scale that would break
        // ∇·u = 0 if the constraint were imposed in normalised units.
        let device = Device::default();
        let grid = Grid2d::square(16, 1.0).unwrap();
        let source = SourceMeasure::White.sampler(&grid, 2).unwrap();
        let stats = ChannelStats::new(vec![0.3, -0.1], vec![2.0, 0.25]);
        let field = |x: Tensor<4>, t: f64| x.mul_scalar(0.5 - t);
        let methods = [
            Method::ProjectAfter { solver: Solver::Heun },
            Method::Pcfm { predictor: Predictor::Euler, anchor: Anchor::Source },
            Method::Pcfm { predictor: Predictor::Heun, anchor: Anchor::State },
            Method::Eci { mixing: 2 },
            Method::Stochastic { threshold: 0.2 },
        ];
        for method in methods {
            let c: Box<dyn Constraint> = Box::new(DivergenceFree::new(grid.clone()));
            let sampler = Sampler::new(spec(method, 8), grid.clone(), source.clone(), Some(c), stats.clone()).unwrap();
            let fields = sampler.sample(&field, 3, 0..3, &device).unwrap();
            for f in fields.axis_iter(Axis(0)) {
                let r = divergence_residual(&grid, f).unwrap();
                assert!(r.relative < 1e-12, "{method:?}: {:e}", r.relative);
            }
        }
        let plain = Sampler::new(spec(Method::Plain { solver: Solver::Heun }, 8), grid.clone(), source, None, stats)
            .unwrap()
            .sample(&field, 3, 0..3, &device)
            .unwrap();
        let r = divergence_residual(&grid, plain.index_axis(Axis(0), 0)).unwrap();
        assert!(r.relative > 0.1, "{:e}", r.relative);
    }

    #[test]
    fn band_limit_removes_the_high_modes_of_the_samples() {
        let device = Device::default();
        let grid = Grid2d::square(16, 1.0).unwrap();
        let source = SourceMeasure::White.sampler(&grid, 2).unwrap();
        let field = |x: Tensor<4>, _t: f64| x.zeros_like();
        let limited = SamplerSpec { band_limit: Some(2), ..spec(Method::Plain { solver: Solver::Euler }, 1) };
        let sampler = Sampler::new(limited, grid.clone(), source, None, unit()).unwrap();
        let fields = sampler.sample(&field, 0, 0..2, &device).unwrap();
        let mut again = fields.clone();
        band_limit(&grid, again.view_mut(), 2).unwrap();
        let diff = (&fields - &again).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(diff < 1e-12, "{diff:e}");
        // White noise has energy at every mode: the limit removed some.
        let spectrum = fieldflow_pde::spectrum::mean_power_spectrum(&grid, fields.view()).unwrap();
        assert!(spectrum.energy[5..].iter().all(|e| *e < 1e-20), "{:?}", spectrum.energy);
    }

    #[test]
    fn inconsistent_descriptions_are_errors() {
        let grid = Grid2d::square(8, 1.0).unwrap();
        let source = SourceMeasure::White.sampler(&grid, 2).unwrap();
        let div = || -> Option<Box<dyn Constraint>> { Some(Box::new(DivergenceFree::new(grid.clone()))) };
        let make = |method, steps, c| Sampler::new(spec(method, steps), grid.clone(), source.clone(), c, unit());
        let key = |r: Result<Sampler, SamplerError>| match r {
            Err(SamplerError::Spec { key, .. }) => key,
            other => panic!("{other:?}"),
        };
        let pcfm = Method::Pcfm { predictor: Predictor::Euler, anchor: Anchor::State };
        assert_eq!(key(make(pcfm, 4, None)), "constraint");
        assert_eq!(key(make(Method::Plain { solver: Solver::Euler }, 4, div())), "constraint");
        assert_eq!(key(make(pcfm, 0, div())), "steps");
        assert_eq!(key(make(Method::Eci { mixing: 0 }, 4, div())), "mixing");
        assert_eq!(key(make(Method::Stochastic { threshold: 1.5 }, 4, None)), "threshold");
        let other = Grid2d::square(16, 1.0).unwrap();
        let wrong: Option<Box<dyn Constraint>> = Some(Box::new(DivergenceFree::new(other)));
        assert_eq!(key(make(pcfm, 4, wrong)), "constraint");
        let stats = ChannelStats::new(vec![0.0], vec![1.0]);
        let r = Sampler::new(spec(pcfm, 4), grid.clone(), source.clone(), div(), stats);
        assert_eq!(key(r), "normalization");
    }
}
