//! Kolmogorov-flow data (Kochkov et al. 2021, jax-cfd): forced, dragged 2D turbulence on
//! `[0, 2π)²`. Each sample starts from a random divergence-free velocity, spins up for
//! `spin_up` time units, then records `snapshots` velocity fields `interval` apart.

use fieldflow_pde::Grid2d;
use fieldflow_pde::kolmogorov::Kolmogorov;
use fieldflow_pde::navier_stokes::record;
use fieldflow_pde::operators::vorticity;
use fieldflow_pde::random::{Covariance, GrfParams, GrfSampler, VelocityScale};
use fieldflow_pde::turbulence::FlowParameters;
use ndarray::{Array4, Axis};

use super::{Boundary, Description, GenerateError, Generator, NsOutput, Sample, periodic_coords};

/// Parameters of the Kolmogorov generator.
#[derive(Debug, Clone, PartialEq)]
pub struct KolmogorovParams {
    /// Flow parameters (forcing, drag, viscosity, CFL, scheme).
    pub flow: Kolmogorov,
    /// Grid of the solve.
    pub solve_resolution: usize,
    /// Grid of the stored fields.
    pub output_resolution: usize,
    /// Spin-up time before the first snapshot.
    pub spin_up: f64,
    /// Number of snapshots (at least 1); the last is the sample's field.
    pub snapshots: usize,
    /// Time between snapshots.
    pub interval: f64,
    /// RMS speed of the random initial velocity.
    pub initial_rms: f64,
    /// What to store (default: velocity).
    pub output: NsOutput,
}

impl Default for KolmogorovParams {
    fn default() -> Self {
        Self {
            flow: Kolmogorov::default(),
            solve_resolution: 128,
            output_resolution: 64,
            spin_up: 20.0,
            snapshots: 8,
            interval: 1.0,
            initial_rms: 3.0,
            output: NsOutput::Velocity,
        }
    }
}

/// Generator of Kolmogorov-flow samples.
#[derive(Debug)]
pub struct KolmogorovGenerator {
    params: KolmogorovParams,
    solve_grid: Grid2d,
    output_grid: Grid2d,
    initial: GrfSampler,
}

impl KolmogorovGenerator {
    /// A generator for `params`.
    ///
    /// # Errors
    /// [`GenerateError::Parameters`] for invalid grids or parameters.
    pub fn new(params: KolmogorovParams) -> Result<Self, GenerateError> {
        let bad =
            |name, value, reason| GenerateError::Parameters(fieldflow_pde::PdeError::Parameter { name, value, reason });
        if !(params.spin_up >= 0.0 && params.spin_up.is_finite()) {
            return Err(bad("spin_up", params.spin_up, "must be finite and non-negative"));
        }
        if !(params.interval > 0.0 && params.interval.is_finite()) {
            return Err(bad("interval", params.interval, "must be finite and positive"));
        }
        if params.snapshots == 0 {
            return Err(bad("snapshots", 0.0, "must be at least 1"));
        }
        let solve_grid = Kolmogorov::grid(params.solve_resolution).map_err(GenerateError::Parameters)?;
        let output_grid = Kolmogorov::grid(params.output_resolution).map_err(GenerateError::Parameters)?;
        let initial =
            GrfSampler::new(&solve_grid, &Covariance::Fno(GrfParams::default())).map_err(GenerateError::Parameters)?;
        VelocityScale::SampleRms(params.initial_rms).validate().map_err(GenerateError::Parameters)?;
        // Validate the flow parameters once.
        params
            .flow
            .solver(solve_grid.clone(), ndarray::Array2::zeros(solve_grid.shape()).view())
            .map_err(GenerateError::Parameters)?;
        Ok(Self { params, solve_grid, output_grid, initial })
    }

    fn times(&self) -> Vec<f64> {
        let p = &self.params;
        (0..p.snapshots).map(|k| p.spin_up + k as f64 * p.interval).collect()
    }
}

impl Generator for KolmogorovGenerator {
    fn describe(&self) -> Description {
        let n = self.params.output_resolution;
        let l = 2.0 * std::f64::consts::PI;
        Description {
            pde: "kolmogorov",
            channels: self.params.output.channels(),
            coefficient_channels: Vec::new(),
            times: if self.params.snapshots > 1 { self.times() } else { Vec::new() },
            shape: (n, n),
            x: periodic_coords(n, l),
            y: periodic_coords(n, l),
            lx: l,
            ly: l,
            boundary: Boundary::Periodic,
            flow: Some(FlowParameters {
                viscosity: self.params.flow.viscosity,
                drag: self.params.flow.drag,
                forcing: self.params.flow.params().forcing,
            }),
        }
    }

    fn sample(&self, seed: u64, index: u64) -> Result<Sample, GenerateError> {
        let err = |source| GenerateError::Sample { index, cause: source };
        let uv0 = self
            .initial
            .sample_velocity(VelocityScale::SampleRms(self.params.initial_rms), seed, index)
            .map_err(err)?;
        let w0 = vorticity(&self.solve_grid, uv0.view()).map_err(err)?;
        let mut solver = self.params.flow.solver(self.solve_grid.clone(), w0.view()).map_err(err)?;
        let times = self.times();
        let traj = record(&mut solver, &times, false).map_err(err)?;
        let last = self
            .params
            .output
            .fields(&self.output_grid, traj.vorticity.index_axis(Axis(0), times.len() - 1))
            .map_err(err)?;
        let trajectory = if times.len() > 1 {
            let n = self.params.output_resolution;
            let mut t = Array4::zeros((times.len(), last.shape()[0], n, n));
            for (k, w) in traj.vorticity.axis_iter(Axis(0)).enumerate() {
                t.index_axis_mut(Axis(0), k).assign(&self.params.output.fields(&self.output_grid, w).map_err(err)?);
            }
            Some(t)
        } else {
            None
        };
        Ok(Sample { fields: last, coefficients: None, trajectory })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use fieldflow_pde::residuals::divergence_residual;

    #[test]
    fn kolmogorov_samples_are_reproducible_divergence_free_velocities() {
        let params = KolmogorovParams {
            solve_resolution: 32,
            output_resolution: 16,
            spin_up: 0.2,
            snapshots: 2,
            interval: 0.1,
            ..KolmogorovParams::default()
        };
        let g = KolmogorovGenerator::new(params.clone()).unwrap();
        assert_eq!(g.describe().times, [0.2, 0.30000000000000004]);
        let a = g.sample(1, 0).unwrap();
        assert_eq!(a, g.sample(1, 0).unwrap());
        assert_eq!(a.fields.shape(), &[2, 16, 16]);
        assert_eq!(a.trajectory.as_ref().unwrap().shape(), &[2, 2, 16, 16]);
        let grid = Kolmogorov::grid(16).unwrap();
        assert!(divergence_residual(&grid, a.fields.view()).unwrap().relative < 1e-13);
        assert!(KolmogorovGenerator::new(KolmogorovParams { snapshots: 0, ..params.clone() }).is_err());
        assert!(KolmogorovGenerator::new(KolmogorovParams { initial_rms: -1.0, ..params }).is_err());
    }
}
