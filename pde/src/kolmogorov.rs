//! Kolmogorov flow: 2D Navier–Stokes on `[0, 2π)²` driven by the body force `A sin(κ y) x̂`
//! with linear drag, the setting of Kochkov et al. (2021) and jax-cfd's spectral demos
//! (`κ = 4`, `A = 1`, drag `α = 0.1`, `ν = 10⁻³`).
//!
//! The laminar state `u = U sin(κ y) x̂`, `U = A / (ν κ² + α)` (vorticity `ω = −U κ cos(κ y)`) is
//! an exact steady solution; at `ν = 10⁻³` it is unstable and the flow becomes turbulent.

use ndarray::{Array2, ArrayView2};

use crate::error::Result;
use crate::grid::Grid2d;
use crate::navier_stokes::{AdaptiveDt, Forcing, NavierStokes2d, NsParams, Scheme};

/// Parameters of a Kolmogorov flow (defaults: Kochkov et al. / jax-cfd).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kolmogorov {
    /// Forcing mode number `κ` on `[0, 2π)`.
    pub wavenumber: u32,
    /// Forcing amplitude `A`.
    pub amplitude: f64,
    /// Linear drag `α`.
    pub drag: f64,
    /// Kinematic viscosity `ν`.
    pub viscosity: f64,
    /// Target CFL number of the adaptive step.
    pub cfl: f64,
    /// Largest time step.
    pub dt_max: f64,
    /// Time-stepping scheme.
    pub scheme: Scheme,
}

impl Default for Kolmogorov {
    fn default() -> Self {
        Self {
            wavenumber: 4,
            amplitude: 1.0,
            drag: 0.1,
            viscosity: 1e-3,
            cfl: 0.5,
            dt_max: 0.01,
            scheme: Scheme::CnRk3,
        }
    }
}

impl Kolmogorov {
    /// The `n × n` grid on `[0, 2π)²`.
    ///
    /// # Errors
    /// [`crate::PdeError::InvalidGrid`] for an odd or zero `n`.
    pub fn grid(n: usize) -> Result<Grid2d> {
        Grid2d::square(n, 2.0 * std::f64::consts::PI)
    }

    /// The Navier–Stokes parameters of this flow (adaptive, CFL-controlled steps).
    pub fn params(&self) -> NsParams {
        NsParams {
            viscosity: self.viscosity,
            drag: self.drag,
            dt: self.dt_max,
            scheme: self.scheme,
            forcing: Forcing::Kolmogorov { wavenumber: self.wavenumber, amplitude: self.amplitude },
            adaptive: Some(AdaptiveDt { cfl: self.cfl, dt_max: self.dt_max }),
        }
    }

    /// A solver for this flow on `grid` from the vorticity `w0`.
    ///
    /// # Errors
    /// As [`NavierStokes2d::new`].
    pub fn solver(&self, grid: Grid2d, w0: ArrayView2<f64>) -> Result<NavierStokes2d> {
        NavierStokes2d::new(grid, self.params(), w0)
    }

    /// Amplitude `U = A / (ν κ² + α)` of the laminar velocity `U sin(κ y)`.
    pub fn laminar_amplitude(&self) -> f64 {
        let kappa = f64::from(self.wavenumber);
        self.amplitude / (self.viscosity * kappa * kappa + self.drag)
    }

    /// The laminar vorticity `−U κ cos(κ y)` on `grid` (assumed `[0, 2π)` along y).
    pub fn laminar_vorticity(&self, grid: &Grid2d) -> Array2<f64> {
        let kappa = 2.0 * std::f64::consts::PI * f64::from(self.wavenumber) / grid.ly();
        let u = self.laminar_amplitude();
        grid.field_from_fn(|_, y| -u * kappa * (kappa * y).cos())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::navier_stokes::{TimeStepper, integrate};

    #[test]
    fn laminar_state_is_a_steady_solution() {
        let k = Kolmogorov { viscosity: 0.05, ..Kolmogorov::default() };
        let g = Kolmogorov::grid(32).unwrap();
        let w0 = k.laminar_vorticity(&g);
        let mut ns = k.solver(g, w0.view()).unwrap();
        integrate(&mut ns, &[2.0], |_, _| Ok(())).unwrap();
        let w = ns.vorticity().unwrap();
        let err = (&w - &w0).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let scale = w0.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(err <= 1e-12 * scale, "drift {err:e}");
        // U = 1 / (0.05·16 + 0.1) and max|u| = U.
        assert!((k.laminar_amplitude() - 1.0 / 0.9).abs() < 1e-15);
        let uv = ns.velocity().unwrap();
        let umax = uv.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!((umax - 1.0 / 0.9).abs() < 1e-12);
    }

    #[test]
    fn perturbed_laminar_flow_relaxes_towards_it_when_stable() {
        // At high viscosity the laminar state is stable: a perturbation decays.
        let k = Kolmogorov { viscosity: 0.5, ..Kolmogorov::default() };
        let g = Kolmogorov::grid(32).unwrap();
        let lam = k.laminar_vorticity(&g);
        let w0 = &lam + &g.field_from_fn(|x, y| 0.5 * (x + 2.0 * y).sin());
        let mut ns = k.solver(g, w0.view()).unwrap();
        let d0 = (&w0 - &lam).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        integrate(&mut ns, &[2.0], |_, _| Ok(())).unwrap();
        assert!(ns.time() > 1.999);
        let d1 = (&ns.vorticity().unwrap() - &lam).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        // The (1,2) mode decays at least at rate ν|k|² + α = 0.5·5 + 0.1 (advection only mixes).
        assert!(d1 < d0 * 0.1, "{d0} -> {d1}");
    }
}
