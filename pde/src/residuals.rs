//! Discrete PDE residuals: how well a given field or trajectory obeys its equation.
//!
//! - **Incompressibility** of a velocity field: the spectral divergence `∇·u`, reported as its
//!   maximum, its RMS and the dimensionless ratio `‖∇·u‖₂ / ‖∇u‖_F` (0 for a divergence-free
//!   field, at most √2 for any field, independent of the field's amplitude and the grid size).
//! - **Navier–Stokes (vorticity form)** between two snapshots `ω⁰, ω¹` a time `Δt` apart: the
//!   trapezoidal residual `r = (ω¹ − ω⁰)/Δt − ½[R(ω⁰) + R(ω¹)]` with
//!   `R(ω) = −u·∇ω + νΔω − αω + f` evaluated spectrally (2/3-rule dealiased, as the solver). For a
//!   smooth exact solution `r = O(Δt²)`. The relative residual divides `‖r‖₂` by
//!   `‖(ω¹ − ω⁰)/Δt‖₂ + ‖½[R(ω⁰) + R(ω¹)]‖₂`, the size of the two sides of the equation, so it
//!   lies in `[0, 1]` and does not blow up for steady flows.
//! - **Darcy**: see [`crate::darcy::DarcyOperator::residual`] (re-exported here as
//!   [`darcy_residual`]).

use ndarray::{Array2, ArrayView2, ArrayView3, Zip, s};
use num_complex::Complex64;

use crate::error::{PdeError, Result, ensure_finite, ensure_shape};
use crate::grid::Grid2d;
use crate::navier_stokes::NsParams;
use crate::operators::{check_velocity, ddx, ddy, divergence};

pub use crate::darcy::DarcyOperator;

/// Summary of a residual field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Residual {
    /// `max |r|`.
    pub max: f64,
    /// `sqrt(mean r²)`.
    pub rms: f64,
    /// The normalised residual described in the module documentation.
    pub relative: f64,
}

fn rms(a: &Array2<f64>) -> f64 {
    (a.iter().map(|v| v * v).sum::<f64>() / a.len().max(1) as f64).sqrt()
}

fn norm2(a: &Array2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Divergence residual of a `(2, ny, nx)` velocity field.
///
/// # Errors
/// [`PdeError::Shape`] / [`PdeError::NonFinite`] for a bad field.
///
/// ```
/// use fieldflow_pde::{Grid2d, residuals::divergence_residual};
/// let g = Grid2d::square(32, 1.0).unwrap();
/// // u = (sin 2πy, sin 2πx) is divergence-free.
/// let mut uv = ndarray::Array3::zeros((2, 32, 32));
/// uv.slice_mut(ndarray::s![0, .., ..]).assign(&g.field_from_fn(|_, y| (6.283185307179586 * y).sin()));
/// uv.slice_mut(ndarray::s![1, .., ..]).assign(&g.field_from_fn(|x, _| (6.283185307179586 * x).sin()));
/// assert!(divergence_residual(&g, uv.view()).unwrap().relative < 1e-14);
/// ```
pub fn divergence_residual(grid: &Grid2d, uv: ArrayView3<f64>) -> Result<Residual> {
    check_velocity(grid, "velocity", uv.shape())?;
    ensure_finite("velocity", uv.iter())?;
    let div = divergence(grid, uv)?;
    let mut grad2 = 0.0;
    for c in 0..2 {
        let f = uv.slice(s![c, .., ..]);
        grad2 += ddx(grid, f)?.iter().chain(ddy(grid, f)?.iter()).map(|v| v * v).sum::<f64>();
    }
    let max = div.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let relative = if grad2 > 0.0 { norm2(&div) / grad2.sqrt() } else { 0.0 };
    Ok(Residual { max, rms: rms(&div), relative })
}

/// Evaluates `R(ω) = −u·∇ω + νΔω − αω + f` spectrally for the parameters of a run.
#[derive(Debug, Clone)]
pub struct VorticityRhs {
    grid: Grid2d,
    viscosity: f64,
    drag: f64,
    forcing: Array2<f64>,
    dealias: Array2<f64>,
    k2: Array2<f64>,
}

impl VorticityRhs {
    /// The right-hand side for `params` (viscosity, drag and forcing; the scheme is irrelevant).
    ///
    /// # Errors
    /// As [`crate::navier_stokes::Forcing::field`].
    pub fn new(grid: &Grid2d, params: &NsParams) -> Result<Self> {
        Ok(Self {
            forcing: params.forcing.field(grid)?,
            grid: grid.clone(),
            viscosity: params.viscosity,
            drag: params.drag,
            dealias: grid.dealias_mask(),
            k2: grid.k_squared(),
        })
    }

    /// `R(ω)` in physical space.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] for a bad field.
    pub fn eval(&self, w: ArrayView2<f64>) -> Result<Array2<f64>> {
        let g = &self.grid;
        g.check_field("vorticity", w.shape())?;
        ensure_finite("vorticity", w.iter())?;
        let w_hat = g.fft(w)?;
        let (kx, ky) = (g.kx_deriv(), g.ky_deriv());
        let i = Complex64::new(0.0, 1.0);
        let mut fields = Vec::with_capacity(4);
        for which in 0..4 {
            let mut spec = w_hat.clone();
            Zip::indexed(&mut spec).and(&self.k2).for_each(|(r, c), s, &k2| {
                let psi = if k2 > 0.0 { *s / k2 } else { Complex64::new(0.0, 0.0) };
                *s = match which {
                    0 => i * ky[r] * psi,  // u = ∂ψ/∂y
                    1 => -i * kx[c] * psi, // v = −∂ψ/∂x
                    2 => i * kx[c] * *s,   // ∂ω/∂x
                    _ => i * ky[r] * *s,   // ∂ω/∂y
                };
            });
            fields.push(g.ifft(spec.view())?);
        }
        let advection = &fields[0] * &fields[2] + &fields[1] * &fields[3];
        let mut adv_hat = g.fft(advection.view())?;
        Zip::from(&mut adv_hat).and(&w_hat).and(&self.dealias).and(&self.k2).for_each(|a, &w, &d, &k2| {
            *a = -*a * d - w * (self.viscosity * k2 + self.drag);
        });
        Ok(g.ifft(adv_hat.view())? + &self.forcing)
    }

    /// Trapezoidal residual between snapshots `w0` at `t` and `w1` at `t + dt`.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] for a non-positive `dt`; shape / finiteness errors for the fields.
    pub fn residual(&self, w0: ArrayView2<f64>, w1: ArrayView2<f64>, dt: f64) -> Result<(Array2<f64>, Residual)> {
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(PdeError::Parameter {
                name: "dt",
                value: dt,
                reason: "snapshot spacing must be finite and positive",
            });
        }
        let rhs = (self.eval(w0)? + self.eval(w1)?) * 0.5;
        let dwdt = (&w1 - &w0) / dt;
        let r = &dwdt - &rhs;
        let scale = norm2(&dwdt) + norm2(&rhs);
        let relative = if scale > 0.0 { norm2(&r) / scale } else { 0.0 };
        let max = r.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let summary = Residual { max, rms: rms(&r), relative };
        Ok((r, summary))
    }

    /// Residual of every interval of a vorticity trajectory `(T, ny, nx)` at `times` (length T,
    /// increasing).
    ///
    /// # Errors
    /// [`PdeError::Shape`] if `times` does not match the trajectory; as [`Self::residual`].
    pub fn trajectory(&self, w: ArrayView3<f64>, times: &[f64]) -> Result<Vec<Residual>> {
        ensure_shape("trajectory", &[times.len(), self.grid.ny(), self.grid.nx()], w.shape())?;
        (1..times.len())
            .map(|t| {
                let dt = times[t] - times[t - 1];
                self.residual(w.slice(s![t - 1, .., ..]), w.slice(s![t, .., ..]), dt).map(|(_, r)| r)
            })
            .collect()
    }
}

/// Darcy residual `A(a)u − f` on interior nodes (zero on the boundary); see
/// [`DarcyOperator::residual`].
///
/// # Errors
/// As [`DarcyOperator::residual`].
pub fn darcy_residual(a: ArrayView2<f64>, u: ArrayView2<f64>, f: ArrayView2<f64>) -> Result<Array2<f64>> {
    let op = DarcyOperator::new(a.nrows(), crate::darcy::FaceAverage::default())?;
    op.residual(a, u, f)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::navier_stokes::{Forcing, NavierStokes2d, Scheme, integrate};
    use crate::operators::gradient;
    use ndarray::{Array3, Axis};
    use std::f64::consts::PI;

    #[test]
    fn divergence_residual_is_zero_for_solenoidal_and_order_one_for_gradients() {
        let g = Grid2d::new(48, 32, 2.0 * PI, 2.0 * PI).unwrap();
        let phi = g.field_from_fn(|x, y| (2.0 * x).sin() * (3.0 * y).cos());
        let grad = gradient(&g, phi.view()).unwrap();
        // For a pure gradient ‖∇·u‖² = ‖Δφ‖² and ‖∇u‖²_F = ‖φxx‖² + 2‖φxy‖² + ‖φyy‖², which for
        // this mode gives (4 + 9)² / (16 + 2·36 + 81) = 169/169 = 1.
        let r = divergence_residual(&g, grad.view()).unwrap();
        assert!((r.relative - 1.0).abs() < 1e-12, "{}", r.relative);
        let vel = crate::operators::velocity_from_streamfunction(&g, phi.view()).unwrap();
        let r = divergence_residual(&g, vel.view()).unwrap();
        assert!(r.relative < 1e-14 && r.max < 1e-12);
        let mut nan = vel.clone();
        nan[[1, 2, 3]] = f64::NAN;
        assert!(divergence_residual(&g, nan.view()).is_err());
    }

    fn trajectory(spacing: f64, count: usize) -> (Grid2d, NsParams, Array3<f64>, Vec<f64>) {
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        let params = NsParams {
            viscosity: 0.02,
            drag: 0.1,
            dt: 1e-3,
            scheme: Scheme::CnRk4,
            forcing: Forcing::Kolmogorov { wavenumber: 2, amplitude: 1.0 },
            adaptive: None,
        };
        let w0 = g.field_from_fn(|x, y| (x).sin() * (2.0 * y).cos() + 0.7 * (3.0 * x + y).cos());
        let mut ns = NavierStokes2d::new(g.clone(), params.clone(), w0.view()).unwrap();
        let times: Vec<f64> = (0..count).map(|i| i as f64 * spacing).collect();
        let mut traj = Array3::zeros((count, 32, 32));
        integrate(&mut ns, &times, |s, i| {
            traj.index_axis_mut(Axis(0), i).assign(&s.vorticity()?);
            Ok(())
        })
        .unwrap();
        (g, params, traj, times)
    }

    #[test]
    fn ns_residual_is_second_order_in_snapshot_spacing_and_detects_wrong_physics() {
        let mut rel = Vec::new();
        for spacing in [0.04, 0.02, 0.01] {
            let (g, params, traj, times) = trajectory(spacing, 3);
            let rhs = VorticityRhs::new(&g, &params).unwrap();
            let r = rhs.trajectory(traj.view(), &times).unwrap();
            rel.push(r[0].relative);
        }
        for w in rel.windows(2) {
            let order = (w[0] / w[1]).log2();
            assert!((1.9..2.1).contains(&order), "residual order {order} ({rel:?})");
        }
        // The same trajectory checked against a wrong viscosity has an O(1)-relative residual.
        let (g, params, traj, times) = trajectory(0.01, 3);
        let wrong = NsParams { viscosity: 0.2, ..params };
        let r = VorticityRhs::new(&g, &wrong).unwrap().trajectory(traj.view(), &times).unwrap();
        assert!(r[0].relative > 100.0 * rel[2], "{} vs {}", r[0].relative, rel[2]);
        assert!(VorticityRhs::new(&g, &wrong).unwrap().trajectory(traj.view(), &times[..2]).is_err());
    }
}
