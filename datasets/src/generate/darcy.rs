//! Darcy-flow data: `−∇·(a∇u) = f` on the unit square with zero Dirichlet data, `s × s` nodes
//! including the boundary (FNO convention). Coefficients come from FNO's thresholded GRF
//! (12 / 3) or PDEBench-style thresholded Gaussian bumps (1 / 0.1); every sample is solved with
//! one shared symbolic Cholesky factorisation.

use fieldflow_pde::darcy::{DarcySolver, DarcySolverParams, FnoCoefficient, Forcing, PdebenchCoefficient};
use ndarray::{Array2, Axis};

use super::{Boundary, Description, GenerateError, Generator, Sample};

/// The coefficient family.
#[derive(Debug, Clone, PartialEq)]
pub enum CoefficientFamily {
    /// FNO's thresholded GRF.
    Fno(FnoCoefficient),
    /// PDEBench-style thresholded bumps.
    Pdebench(PdebenchCoefficient),
}

impl Default for CoefficientFamily {
    fn default() -> Self {
        Self::Fno(FnoCoefficient::default())
    }
}

/// Parameters of the Darcy generator.
#[derive(Debug, Clone, PartialEq)]
pub struct DarcyParams {
    /// Nodes per side including the boundary (default 64).
    pub resolution: usize,
    /// Coefficient family.
    pub coefficient: CoefficientFamily,
    /// Right-hand side.
    pub forcing: Forcing,
    /// Solver settings.
    pub solver: DarcySolverParams,
    /// Store the pair `(a, u)` as the two channels of `/fields` (for models of the joint
    /// distribution) instead of `u` in `/fields` and `a` in `/coefficients`.
    pub pair: bool,
}

impl Default for DarcyParams {
    fn default() -> Self {
        Self {
            resolution: 64,
            coefficient: CoefficientFamily::default(),
            forcing: Forcing::default(),
            solver: DarcySolverParams::default(),
            pair: false,
        }
    }
}

impl DarcyParams {
    /// The defaults with `resolution` nodes per side.
    pub fn with_resolution(resolution: usize) -> Self {
        Self { resolution, ..Self::default() }
    }
}

/// Generator of (coefficient, solution) pairs.
#[derive(Debug)]
pub struct DarcyGenerator {
    params: DarcyParams,
    solver: DarcySolver,
    f: Array2<f64>,
}

impl DarcyGenerator {
    /// A generator for `params`.
    ///
    /// # Errors
    /// [`GenerateError::Parameters`] for an invalid size, forcing or coefficient family.
    pub fn new(params: DarcyParams) -> Result<Self, GenerateError> {
        let solver = DarcySolver::with_params(params.resolution, params.solver).map_err(GenerateError::Parameters)?;
        let f = params.forcing.field(params.resolution).map_err(GenerateError::Parameters)?;
        let generator = Self { params, solver, f };
        generator.coefficient(0, 0).map_err(GenerateError::Parameters)?;
        Ok(generator)
    }

    fn coefficient(&self, seed: u64, index: u64) -> fieldflow_pde::Result<Array2<f64>> {
        let s = self.params.resolution;
        match &self.params.coefficient {
            CoefficientFamily::Fno(c) => c.sample(s, seed, index),
            CoefficientFamily::Pdebench(c) => c.sample(s, seed, index),
        }
    }

    /// The right-hand side `f` on the nodes.
    pub fn forcing(&self) -> &Array2<f64> {
        &self.f
    }
}

impl Generator for DarcyGenerator {
    fn describe(&self) -> Description {
        let s = self.params.resolution;
        let nodes: Vec<f64> = (0..s).map(|j| j as f64 / (s - 1) as f64).collect();
        Description {
            pde: "darcy",
            channels: if self.params.pair { vec!["a".into(), "u".into()] } else { vec!["u".into()] },
            coefficient_channels: if self.params.pair { Vec::new() } else { vec!["a".into()] },
            times: Vec::new(),
            shape: (s, s),
            x: nodes.clone(),
            y: nodes,
            lx: 1.0,
            ly: 1.0,
            boundary: Boundary::Dirichlet,
            flow: None,
        }
    }

    fn sample(&self, seed: u64, index: u64) -> Result<Sample, GenerateError> {
        let err = |source| GenerateError::Sample { index, cause: source };
        let a = self.coefficient(seed, index).map_err(err)?;
        let u = self.solver.solve(a.view(), self.f.view()).map_err(err)?;
        if self.params.pair {
            let fields = ndarray::stack(Axis(0), &[a.view(), u.view()])
                .map_err(|e| err(fieldflow_pde::PdeError::Solver(format!("stacking (a, u): {e}"))))?;
            return Ok(Sample { fields, coefficients: None, trajectory: None });
        }
        Ok(Sample { fields: u.insert_axis(Axis(0)), coefficients: Some(a.insert_axis(Axis(0))), trajectory: None })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::generate::generate;
    use fieldflow_pde::darcy::{DarcyOperator, FaceAverage};

    #[test]
    fn darcy_pairs_satisfy_the_discrete_pde() {
        for coefficient in [CoefficientFamily::default(), CoefficientFamily::Pdebench(PdebenchCoefficient::default())] {
            let g = DarcyGenerator::new(DarcyParams { resolution: 33, coefficient, ..DarcyParams::default() }).unwrap();
            let s = g.sample(5, 3).unwrap();
            let a = s.coefficients.as_ref().unwrap().index_axis(Axis(0), 0).to_owned();
            let u = s.fields.index_axis(Axis(0), 0).to_owned();
            let op = DarcyOperator::new(33, FaceAverage::Arithmetic).unwrap();
            let r = op.residual_summary(a.view(), u.view(), g.forcing().view()).unwrap();
            assert!(r.relative < 1e-11 && r.boundary_max == 0.0, "{r:?}");
        }
    }

    #[test]
    fn parallel_batches_equal_serial_samples() {
        let g = DarcyGenerator::new(DarcyParams::with_resolution(17)).unwrap();
        let mut batches = Vec::new();
        generate(
            &g,
            9,
            2..9,
            3,
            |start, b| {
                batches.push((start, b));
                Ok(())
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(batches.iter().map(|(s, b)| (*s, b.len())).collect::<Vec<_>>(), [(2, 3), (5, 3), (8, 1)]);
        for (start, batch) in &batches {
            for (k, sample) in batch.iter().enumerate() {
                assert_eq!(sample, &g.sample(9, start + k as u64).unwrap());
            }
        }
        assert!(DarcyGenerator::new(DarcyParams::with_resolution(2)).is_err());
    }
}
