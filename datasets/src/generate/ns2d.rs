//! 2D Navier–Stokes data in the FNO setting (Li et al. 2021): a GRF initial vorticity
//! `N(0, 7^3 (−Δ + 49)^(−2.5))` on `[0,1)²`, forcing `0.1(sin 2π(x+y) + cos 2π(x+y))`, ν = 1e-3,
//! solved at 256² with FNO's Crank–Nicolson scheme (Δt = 1e-4) and spectrally truncated to 64².
//!
//! Velocities are computed from the coarse vorticity on the output grid, so they are
//! divergence-free there to round-off.

use fieldflow_pde::Grid2d;
use fieldflow_pde::navier_stokes::{AdaptiveDt, Forcing, NavierStokes2d, NsParams, Scheme, record};
use fieldflow_pde::operators::velocity_from_vorticity;
use fieldflow_pde::random::{Covariance, GrfParams, GrfSampler};
use fieldflow_pde::resample::resample;
use fieldflow_pde::turbulence::FlowParameters;
use ndarray::{Array3, Array4, ArrayView2, Axis, s};

use super::{Boundary, Description, GenerateError, Generator, Sample, periodic_coords};

/// Which fields a Navier–Stokes data set stores (serde names: `vorticity`, `velocity`, `both`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum NsOutput {
    /// Vorticity `w` only (FNO's data sets).
    #[default]
    Vorticity,
    /// Divergence-free velocity `(u, v)`.
    Velocity,
    /// Vorticity and velocity `(w, u, v)`.
    Both,
}

impl NsOutput {
    /// The stored channel names.
    pub(super) fn channels(self) -> Vec<String> {
        let names: &[&str] = match self {
            NsOutput::Vorticity => &["w"],
            NsOutput::Velocity => &["u", "v"],
            NsOutput::Both => &["w", "u", "v"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The stored channels of a vorticity snapshot `w` (any resolution), spectrally resampled to
    /// `grid`. Velocities are computed on `grid`, so they are divergence-free there; with
    /// [`NsOutput::Both`] the stored vorticity is the curl of the stored velocity, so the channels
    /// agree exactly (the coarse Nyquist modes, which no velocity on this grid can carry, are
    /// dropped).
    pub(super) fn fields(self, grid: &Grid2d, w: ArrayView2<f64>) -> Result<Array3<f64>, fieldflow_pde::PdeError> {
        let w = resample(w, grid.ny(), grid.nx())?;
        if self == NsOutput::Vorticity {
            return Ok(w.insert_axis(Axis(0)));
        }
        let uv = velocity_from_vorticity(grid, w.view())?;
        if self == NsOutput::Velocity {
            return Ok(uv);
        }
        let mut out = Array3::zeros((3, grid.ny(), grid.nx()));
        out.slice_mut(s![0, .., ..]).assign(&fieldflow_pde::operators::vorticity(grid, uv.view())?);
        out.slice_mut(s![1..3, .., ..]).assign(&uv);
        Ok(out)
    }
}

/// Parameters of the Navier–Stokes generator (defaults: FNO's `NavierStokes_V1e-3` setting with
/// 10 snapshots up to t = 10 instead of 50).
#[derive(Debug, Clone, PartialEq)]
pub struct Ns2dParams {
    /// Grid of the solve (FNO: 256).
    pub solve_resolution: usize,
    /// Grid of the stored fields (FNO: 64).
    pub output_resolution: usize,
    /// Domain length (both directions).
    pub domain: f64,
    /// Viscosity ν.
    pub viscosity: f64,
    /// Time step (the upper bound when `cfl` is set).
    pub dt: f64,
    /// Optional target CFL number for adaptive steps.
    pub cfl: Option<f64>,
    /// Time-stepping scheme.
    pub scheme: Scheme,
    /// Forcing.
    pub forcing: Forcing,
    /// Final time.
    pub t_final: f64,
    /// Number of stored snapshots, evenly spaced in `(0, t_final]`; 0 stores only the final field.
    pub snapshots: usize,
    /// What to store.
    pub output: NsOutput,
    /// Initial-condition random field.
    pub initial: GrfParams,
}

impl Default for Ns2dParams {
    fn default() -> Self {
        Self {
            solve_resolution: 256,
            output_resolution: 64,
            domain: 1.0,
            viscosity: 1e-3,
            dt: 1e-4,
            cfl: None,
            scheme: Scheme::FnoEuler,
            forcing: Forcing::Fno { amplitude: 0.1 },
            t_final: 10.0,
            snapshots: 10,
            output: NsOutput::Vorticity,
            initial: GrfParams::default(),
        }
    }
}

/// Generator of Navier–Stokes samples.
#[derive(Debug)]
pub struct Ns2dGenerator {
    params: Ns2dParams,
    solve_grid: Grid2d,
    output_grid: Grid2d,
    initial: GrfSampler,
    ns: NsParams,
}

impl Ns2dGenerator {
    /// A generator for `params`.
    ///
    /// # Errors
    /// [`GenerateError::Parameters`] for invalid grids or parameters.
    pub fn new(params: Ns2dParams) -> Result<Self, GenerateError> {
        let solve_grid = Grid2d::square(params.solve_resolution, params.domain).map_err(GenerateError::Parameters)?;
        let output_grid = Grid2d::square(params.output_resolution, params.domain).map_err(GenerateError::Parameters)?;
        let initial =
            GrfSampler::new(&solve_grid, &Covariance::Fno(params.initial)).map_err(GenerateError::Parameters)?;
        if !(params.t_final > 0.0 && params.t_final.is_finite()) {
            return Err(GenerateError::Parameters(fieldflow_pde::PdeError::Parameter {
                name: "t_final",
                value: params.t_final,
                reason: "must be finite and positive",
            }));
        }
        let ns = NsParams {
            viscosity: params.viscosity,
            drag: 0.0,
            dt: params.dt,
            scheme: params.scheme,
            forcing: params.forcing.clone(),
            adaptive: params.cfl.map(|cfl| AdaptiveDt { cfl, dt_max: params.dt }),
        };
        // Validate the solver parameters once, on the initial condition of sample 0.
        let w0 = initial.sample(0, 0).map_err(GenerateError::Parameters)?;
        NavierStokes2d::new(solve_grid.clone(), ns.clone(), w0.view()).map_err(GenerateError::Parameters)?;
        Ok(Self { params, solve_grid, output_grid, initial, ns })
    }

    fn times(&self) -> Vec<f64> {
        let p = &self.params;
        if p.snapshots == 0 {
            vec![p.t_final]
        } else {
            (1..=p.snapshots).map(|k| p.t_final * k as f64 / p.snapshots as f64).collect()
        }
    }
}

impl Generator for Ns2dGenerator {
    fn describe(&self) -> Description {
        let n = self.params.output_resolution;
        let l = self.params.domain;
        Description {
            pde: "navier_stokes",
            channels: self.params.output.channels(),
            coefficient_channels: vec!["w0".into()],
            times: if self.params.snapshots > 0 { self.times() } else { Vec::new() },
            shape: (n, n),
            x: periodic_coords(n, l),
            y: periodic_coords(n, l),
            lx: l,
            ly: l,
            boundary: Boundary::Periodic,
            flow: match &self.ns.forcing {
                Forcing::Field(_) => None,
                forcing => {
                    Some(FlowParameters { viscosity: self.ns.viscosity, drag: self.ns.drag, forcing: forcing.clone() })
                }
            },
        }
    }

    fn sample(&self, seed: u64, index: u64) -> Result<Sample, GenerateError> {
        let err = |source| GenerateError::Sample { index, cause: source };
        let w0 = self.initial.sample(seed, index).map_err(err)?;
        let mut solver = NavierStokes2d::new(self.solve_grid.clone(), self.ns.clone(), w0.view()).map_err(err)?;
        let times = self.times();
        let traj = record(&mut solver, &times, false).map_err(err)?;
        let n = self.params.output_resolution;
        let coefficients = resample(w0.view(), n, n).map_err(err)?.insert_axis(Axis(0));
        let last = traj.vorticity.index_axis(Axis(0), times.len() - 1);
        let fields = self.params.output.fields(&self.output_grid, last).map_err(err)?;
        let trajectory = if self.params.snapshots > 0 {
            let mut t = Array4::zeros((times.len(), fields.shape()[0], n, n));
            for (k, w) in traj.vorticity.axis_iter(Axis(0)).enumerate() {
                t.index_axis_mut(Axis(0), k).assign(&self.params.output.fields(&self.output_grid, w).map_err(err)?);
            }
            Some(t)
        } else {
            None
        };
        Ok(Sample { fields, coefficients: Some(coefficients), trajectory })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fieldflow_pde::operators::{divergence, vorticity};

    fn tiny(output: NsOutput, snapshots: usize) -> Ns2dParams {
        Ns2dParams {
            solve_resolution: 64,
            output_resolution: 32,
            dt: 1e-3,
            t_final: 0.05,
            snapshots,
            output,
            ..Ns2dParams::default()
        }
    }

    #[test]
    fn velocity_samples_are_divergence_free_on_the_output_grid() {
        let g = Ns2dGenerator::new(tiny(NsOutput::Both, 2)).unwrap();
        let d = g.describe();
        assert_eq!(d.channels, ["w", "u", "v"]);
        assert_eq!(d.times, [0.025, 0.05]);
        let s = g.sample(3, 1).unwrap();
        assert_eq!(s.fields.shape(), &[3, 32, 32]);
        let traj = s.trajectory.as_ref().unwrap();
        assert_eq!(traj.shape(), &[2, 3, 32, 32]);
        assert_eq!(traj.index_axis(Axis(0), 1), s.fields);
        let uv = s.fields.slice(s![1..3, .., ..]);
        let grid = Grid2d::square(32, 1.0).unwrap();
        let umax = uv.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let div = divergence(&grid, uv).unwrap();
        assert!(div.iter().all(|d| d.abs() <= 1e-12 * umax * 32.0 * std::f64::consts::PI));
        let w = vorticity(&grid, uv).unwrap();
        let wmax = w.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!((&w - &s.fields.slice(s![0, .., ..])).iter().all(|e| e.abs() <= 1e-10 * wmax));
    }

    #[test]
    fn samples_depend_only_on_seed_and_index() {
        let g = Ns2dGenerator::new(tiny(NsOutput::Vorticity, 0)).unwrap();
        let a = g.sample(7, 2).unwrap();
        assert_eq!(a, g.sample(7, 2).unwrap());
        assert_ne!(a.fields, g.sample(7, 3).unwrap().fields);
        assert!(a.trajectory.is_none());
        assert!(Ns2dGenerator::new(Ns2dParams { solve_resolution: 63, ..tiny(NsOutput::Vorticity, 0) }).is_err());
        assert!(Ns2dGenerator::new(Ns2dParams { t_final: -1.0, ..tiny(NsOutput::Vorticity, 0) }).is_err());
    }
}
