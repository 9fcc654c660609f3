//! Statistics of 2D turbulent velocity fields: per-field scalars, velocity-increment structure
//! functions, and the energy budget of a forced flow.
//!
//! For a velocity `u = (u, v)` on a periodic `nx × ny` grid, with `⟨·⟩` the grid mean and
//! `ω = ∂v/∂x − ∂u/∂y`:
//!
//! - energy `E = ½⟨|u|²⟩`, enstrophy `Z = ½⟨ω²⟩`, palinstrophy `P = ½⟨|∇ω|²⟩` ([`flow_scalars`]);
//! - the longitudinal increments at a separation of `r` grid spacings are
//!   `δu_L = u(x + r Δx x̂) − u(x)` and `v(x + r Δy ŷ) − v(x)`, the transverse ones
//!   `v(x + r Δx x̂) − v(x)` and `u(x + r Δy ŷ) − u(x)`, both directions pooled (the usual
//!   isotropic estimator); `S_p(r) = ⟨δu^p⟩` and the flatness `S₄ / S₂²`, which is 3 for Gaussian
//!   increments ([`structure_functions`]);
//! - the energy budget `dE/dt = ⟨F·u⟩ − ν⟨ω²⟩ − α⟨|u|²⟩` of a flow with body force `F`, viscosity
//!   `ν` and linear drag `α` (on a periodic domain `⟨|∇u|²⟩ = ⟨ω²⟩` for incompressible `u`): the
//!   injection, dissipation and drag terms of one field ([`FlowParameters::budget`]).
//!
//! The flatness of any set of values is [`flatness`], `⟨x⁴⟩ / ⟨x²⟩²` (raw moments: vorticity and
//! increments of periodic fields have zero mean).

use ndarray::{Array2, Array3, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;

use crate::error::{PdeError, Result};
use crate::grid::Grid2d;
use crate::navier_stokes::Forcing;
use crate::operators::{check_velocity, gradient, velocity_from_vorticity, vorticity};

/// Energy, enstrophy and palinstrophy of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowScalars {
    /// `E = ½⟨|u|²⟩`.
    pub energy: f64,
    /// `Z = ½⟨ω²⟩`.
    pub enstrophy: f64,
    /// `P = ½⟨|∇ω|²⟩`.
    pub palinstrophy: f64,
}

fn half_mean_square<'a>(values: impl Iterator<Item = &'a f64>, points: usize) -> f64 {
    0.5 * values.map(|v| v * v).sum::<f64>() / points as f64
}

/// Energy, enstrophy and palinstrophy of a `(2, ny, nx)` velocity field (derivatives spectral).
///
/// # Errors
/// [`PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn flow_scalars(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<FlowScalars> {
    Ok(flow_scalars_and_vorticity(grid, uv)?.0)
}

/// [`flow_scalars`] and the vorticity `(ny, nx)` it is computed from, for callers that need
/// both.
///
/// # Errors
/// [`PdeError::Shape`] if `uv` is not `(2, ny, nx)`.
pub fn flow_scalars_and_vorticity(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<(FlowScalars, Array2<f64>)> {
    check_velocity(grid, "velocity", uv.shape())?;
    let points = grid.nx() * grid.ny();
    let w = vorticity(grid, uv)?;
    let grad_w = gradient(grid, w.view())?;
    let scalars = FlowScalars {
        energy: half_mean_square(uv.iter(), points),
        enstrophy: half_mean_square(w.iter(), points),
        palinstrophy: half_mean_square(grad_w.iter(), points),
    };
    Ok((scalars, w))
}

/// `⟨x⁴⟩ / ⟨x²⟩²` of `values`; NaN when there are none or all are zero.
pub fn flatness<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    let (m2, m4, n) = values.into_iter().fold((0.0, 0.0, 0usize), |(m2, m4, n), &x| {
        let x2 = x * x;
        (m2 + x2, m4 + x2 * x2, n + 1)
    });
    let n = n as f64;
    (m4 / n) / (m2 / n).powi(2)
}

/// The second and fourth moments of the increments at one separation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncrementMoments {
    /// The separation in grid spacings.
    pub separation: usize,
    /// `S₂ = ⟨δu²⟩`.
    pub s2: f64,
    /// `S₄ = ⟨δu⁴⟩`.
    pub s4: f64,
}

impl IncrementMoments {
    /// The increment flatness `S₄ / S₂²` (3 for Gaussian increments).
    #[must_use]
    pub fn flatness(&self) -> f64 {
        self.s4 / (self.s2 * self.s2)
    }
}

/// Longitudinal and transverse structure functions, one entry per requested separation.
#[derive(Debug, Clone, PartialEq)]
pub struct StructureFunctions {
    /// From `u` along x and `v` along y.
    pub longitudinal: Vec<IncrementMoments>,
    /// From `v` along x and `u` along y.
    pub transverse: Vec<IncrementMoments>,
}

/// Power sums `(Σδ², Σδ⁴)` of the periodic increments of `f` by `r` along x (`along_x`) or y.
fn increment_sums(f: ndarray::ArrayView2<f64>, r: usize, along_x: bool) -> (f64, f64) {
    let (ny, nx) = f.dim();
    let mut sums = (0.0, 0.0);
    for y in 0..ny {
        for x in 0..nx {
            let other = if along_x { f[[y, (x + r) % nx]] } else { f[[(y + r) % ny, x]] };
            let d2 = (other - f[[y, x]]).powi(2);
            sums.0 += d2;
            sums.1 += d2 * d2;
        }
    }
    sums
}

/// Structure functions `S₂`, `S₄` of the velocity increments of a batch `[N, 2, ny, nx]` at each
/// separation (in grid spacings, the same count along x and y), averaged over all samples,
/// points and both directions (computed in parallel over samples).
///
/// # Errors
/// [`PdeError::Shape`] unless the batch holds at least one `(2, ny, nx)` field with
/// `ny, nx ≥ 2`; [`PdeError::Parameter`] for a separation of 0 or not below both grid sizes.
pub fn structure_functions(batch: ArrayView4<f64>, separations: &[usize]) -> Result<StructureFunctions> {
    let (n, c, ny, nx) = batch.dim();
    if n == 0 || c != 2 || ny < 2 || nx < 2 {
        return Err(PdeError::Shape {
            what: "velocity batch",
            expected: vec![n.max(1), 2, ny.max(2), nx.max(2)],
            got: batch.shape().to_vec(),
        });
    }
    if let Some(&r) = separations.iter().find(|&&r| r == 0 || r >= nx.min(ny)) {
        return Err(PdeError::Parameter {
            name: "separation",
            value: r as f64,
            reason: "must be at least 1 and below both grid sizes",
        });
    }
    // Per sample and separation: [longitudinal s2, s4, transverse s2, s4].
    let per_sample: Vec<Vec<[f64; 4]>> = batch
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|uv| {
            let (u, v) = (uv.index_axis(Axis(0), 0), uv.index_axis(Axis(0), 1));
            separations
                .iter()
                .map(|&r| {
                    let (lx, ly) = (increment_sums(u, r, true), increment_sums(v, r, false));
                    let (tx, ty) = (increment_sums(v, r, true), increment_sums(u, r, false));
                    [lx.0 + ly.0, lx.1 + ly.1, tx.0 + ty.0, tx.1 + ty.1]
                })
                .collect()
        })
        .collect();
    let count = (2 * n * nx * ny) as f64;
    let moments = |offset: usize| {
        separations
            .iter()
            .enumerate()
            .map(|(i, &separation)| {
                let sum = |k: usize| per_sample.iter().map(|s| s[i][k]).sum::<f64>() / count;
                IncrementMoments { separation, s2: sum(offset), s4: sum(offset + 1) }
            })
            .collect()
    };
    Ok(StructureFunctions { longitudinal: moments(0), transverse: moments(2) })
}

/// The physical parameters of a forced flow that its energy budget needs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FlowParameters {
    /// Kinematic viscosity `ν`.
    pub viscosity: f64,
    /// Linear drag `α`.
    pub drag: f64,
    /// The forcing (of the vorticity equation; its body force `F` has `curl F = f`).
    pub forcing: Forcing,
}

/// The three terms of the energy budget of one field (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyBudget {
    /// Injection `⟨F·u⟩`.
    pub injection: f64,
    /// Viscous dissipation `ν⟨ω²⟩`.
    pub dissipation: f64,
    /// Drag `α⟨|u|²⟩`.
    pub drag: f64,
}

impl FlowParameters {
    /// The body force `F` on `grid`: the zero-mean divergence-free velocity whose curl is the
    /// vorticity forcing (`A sin(κy) x̂` for Kolmogorov forcing).
    ///
    /// # Errors
    /// As [`Forcing::field`].
    pub fn body_force(&self, grid: &Grid2d) -> Result<Array3<f64>> {
        velocity_from_vorticity(grid, self.forcing.field(grid)?.view())
    }

    /// The energy budget of a `(2, ny, nx)` velocity field under the body force `force` (from
    /// [`FlowParameters::body_force`] on the same grid).
    ///
    /// # Errors
    /// [`PdeError::Shape`] if `uv` or `force` is not `(2, ny, nx)`.
    pub fn budget(&self, grid: &Grid2d, force: ArrayView3<f64>, uv: ArrayView3<f64>) -> Result<EnergyBudget> {
        self.budget_with(grid, force, uv, &flow_scalars(grid, uv)?)
    }

    /// [`FlowParameters::budget`] with the field's [`flow_scalars`] already computed.
    ///
    /// # Errors
    /// [`PdeError::Shape`] if `uv` or `force` is not `(2, ny, nx)`.
    pub fn budget_with(
        &self,
        grid: &Grid2d,
        force: ArrayView3<f64>,
        uv: ArrayView3<f64>,
        scalars: &FlowScalars,
    ) -> Result<EnergyBudget> {
        check_velocity(grid, "velocity", uv.shape())?;
        check_velocity(grid, "body force", force.shape())?;
        let points = (grid.nx() * grid.ny()) as f64;
        Ok(EnergyBudget {
            injection: force.iter().zip(uv.iter()).map(|(f, u)| f * u).sum::<f64>() / points,
            dissipation: self.viscosity * 2.0 * scalars.enstrophy,
            drag: self.drag * 2.0 * scalars.energy,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kolmogorov::Kolmogorov;
    use crate::random::{Covariance, GrfParams, GrfSampler, VelocityScale};
    use ndarray::{Array4, s};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn scalars_of_a_single_mode_are_exact() {
        // u = (sin(3y), 0) on [0, 2π)²: E = ¼, ω = −3 cos(3y) so Z = 9/4, ∇ω = (0, 9 sin 3y), P = 81/4.
        let grid = Kolmogorov::grid(32).unwrap();
        let mut uv = Array3::zeros((2, 32, 32));
        uv.slice_mut(s![0, .., ..]).assign(&grid.field_from_fn(|_, y| (3.0 * y).sin()));
        let s = flow_scalars(&grid, uv.view()).unwrap();
        let eps = 64.0 * f64::EPSILON;
        assert!(close(s.energy, 0.25, eps), "{s:?}");
        assert!(close(s.enstrophy, 2.25, eps), "{s:?}");
        assert!(close(s.palinstrophy, 20.25, eps), "{s:?}");
    }

    #[test]
    fn taylor_green_increments_have_their_closed_form() {
        // u = sin x cos y, v = −cos x sin y: every increment is 2 sin(r/2) × (a cos and a cos),
        // so S₂ = sin²(r/2), S₄ = (9/4) sin⁴(r/2) and the flatness is 9/4 in both families
        // (transverse: u along y is sin x (cos(y+r) − cos y), the same law).
        let n = 64;
        let grid = Kolmogorov::grid(n).unwrap();
        let mut uv = Array4::zeros((1, 2, n, n));
        uv.slice_mut(s![0, 0, .., ..]).assign(&grid.field_from_fn(|x, y| x.sin() * y.cos()));
        uv.slice_mut(s![0, 1, .., ..]).assign(&grid.field_from_fn(|x, y| -x.cos() * y.sin()));
        let sf = structure_functions(uv.view(), &[1, 2, 4, 8]).unwrap();
        for family in [&sf.longitudinal, &sf.transverse] {
            for m in family {
                let half = (m.separation as f64 * grid.dx() / 2.0).sin();
                assert!(close(m.s2, half.powi(2), 1e-12), "{m:?}");
                assert!(close(m.s4, 2.25 * half.powi(4), 1e-12), "{m:?}");
                assert!(close(m.flatness(), 2.25, 1e-12), "{m:?}");
            }
        }
    }

    #[test]
    fn gaussian_fields_have_flatness_three() {
        // A Gaussian velocity has Gaussian increments and vorticity: flatness 3 up to sampling
        // error. 128 fields of 64² with a smooth spectrum hold ~2e4 independent modes per
        // statistic; the flatness estimator's relative std is then well below 2 %.
        let grid = Kolmogorov::grid(64).unwrap();
        let cov = Covariance::Fno(GrfParams { alpha: 2.0, tau: 3.0, sigma: None, mean_zero: true });
        let sampler = GrfSampler::new(&grid, &cov).unwrap();
        let batch = sampler.sample_velocity_batch(VelocityScale::ExpectedRms(1.0), 7, 0..128).unwrap();
        let sf = structure_functions(batch.view(), &[1, 2, 4, 8]).unwrap();
        for m in sf.longitudinal.iter().chain(&sf.transverse) {
            assert!((m.flatness() - 3.0).abs() < 0.1, "{m:?}");
        }
        let w: Vec<f64> = batch.axis_iter(Axis(0)).flat_map(|uv| vorticity(&grid, uv).unwrap().into_iter()).collect();
        assert!((flatness(&w) - 3.0).abs() < 0.1, "vorticity flatness {}", flatness(&w));
    }

    #[test]
    fn the_laminar_kolmogorov_flow_balances_its_budget() {
        // The steady laminar state U sin(κy) x̂ with A = (νκ² + α) U: injection AU/2 equals
        // dissipation νκ²U²/2 plus drag αU²/2.
        let flow = Kolmogorov::default();
        let grid = Kolmogorov::grid(64).unwrap();
        let params = FlowParameters {
            viscosity: flow.viscosity,
            drag: flow.drag,
            forcing: Forcing::Kolmogorov { wavenumber: flow.wavenumber, amplitude: flow.amplitude },
        };
        let force = params.body_force(&grid).unwrap();
        let kappa = f64::from(flow.wavenumber);
        let expected_force = grid.field_from_fn(|_, y| flow.amplitude * (kappa * y).sin());
        let err = (&force.slice(s![0, .., ..]) - &expected_force).mapv(f64::abs).fold(0.0_f64, |m, &v| m.max(v));
        assert!(err < 1e-12, "body force error {err}");
        let uv = velocity_from_vorticity(&grid, flow.laminar_vorticity(&grid).view()).unwrap();
        let b = params.budget(&grid, force.view(), uv.view()).unwrap();
        let u = flow.laminar_amplitude();
        let eps = 1e-12;
        assert!(close(b.injection, flow.amplitude * u / 2.0, eps), "{b:?}");
        assert!(close(b.dissipation, flow.viscosity * kappa * kappa * u * u / 2.0, eps), "{b:?}");
        assert!(close(b.drag, flow.drag * u * u / 2.0, eps), "{b:?}");
        assert!(close(b.injection, b.dissipation + b.drag, eps), "{b:?}");
    }

    #[test]
    fn bad_separations_and_shapes_are_errors() {
        let batch = Array4::<f64>::zeros((2, 2, 8, 8));
        assert!(matches!(structure_functions(batch.view(), &[0]), Err(PdeError::Parameter { .. })));
        assert!(matches!(structure_functions(batch.view(), &[8]), Err(PdeError::Parameter { .. })));
        let one_channel = Array4::<f64>::zeros((2, 1, 8, 8));
        assert!(matches!(structure_functions(one_channel.view(), &[1]), Err(PdeError::Shape { .. })));
    }
}
