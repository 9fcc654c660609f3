//! 2D incompressible Navier–Stokes in vorticity form on a periodic grid, pseudo-spectral.
//!
//! ```text
//! ∂ω/∂t + u·∇ω = ν Δω − α ω + f,     u = (∂ψ/∂y, −∂ψ/∂x),   Δψ = −ω
//! ```
//! with viscosity `ν`, linear drag `α` and a vorticity forcing `f`. The state is the spectrum
//! `ω̂`. The stiff linear part `L = −ν|k|² − α` is treated implicitly (Crank–Nicolson), the
//! advection `−u·∇ω` (products in physical space, 2/3-rule dealiased) and the forcing explicitly:
//!
//! - [`Scheme::FnoEuler`]: the FNO data generator's scheme (Li et al., `ns_2d.py`), first order:
//!   `ω̂ⁿ⁺¹ = [(1 + ½Δt L) ω̂ⁿ + Δt N̂(ωⁿ)] / (1 − ½Δt L)`.
//! - [`Scheme::CnRk3`] and [`Scheme::CnRk4`]: jax-cfd's low-storage IMEX schemes (Williamson RK3,
//!   Carpenter–Kennedy RK4 for the explicit part, Crank–Nicolson stages for `L`); second order
//!   with viscosity, and of the RK order for the explicit part alone.
//!
//! [`TimeStepper`] is the small trait every time stepper implements, and [`integrate`] the one
//! loop that drives any of them to a list of snapshot times.
//!
//! Length: 529 lines of code, 204 of tests; kept together as one subject (the solver, its three schemes and the integrate loop).

use ndarray::{Array2, Array3, Array4, ArrayView2, Axis, Zip, s};
use num_complex::Complex64;
use rayon::prelude::*;

use crate::error::{PdeError, Result, ensure_finite};
use crate::grid::Grid2d;
use crate::operators::velocity_from_vorticity;

/// A time stepper: a state that advances by `update(dt)`.
pub trait TimeStepper {
    /// Current simulation time.
    fn time(&self) -> f64;
    /// The step the stepper would take next (fixed, or from a CFL condition).
    fn dt(&self) -> f64;
    /// Whether `dt` changes with the state; [`integrate`] then asks for it before every step.
    fn adaptive(&self) -> bool {
        false
    }
    /// Advances the state by `dt`.
    ///
    /// # Errors
    /// When the step would be unstable or the state stops being finite.
    fn update(&mut self, dt: f64) -> Result<()>;
}

/// Advances `stepper` through every time in `times` (non-decreasing, not before the current
/// time), calling `snapshot(stepper, i)` on arrival at `times[i]`. Steps are shortened so each
/// snapshot time is hit exactly; with a fixed `dt` the steps of one interval are all equal.
/// Returns the number of steps taken.
///
/// # Errors
/// [`PdeError::Parameter`] for times that go backwards or are not finite; any error of the
/// stepper or of `snapshot`.
pub fn integrate<S: TimeStepper + ?Sized>(
    stepper: &mut S,
    times: &[f64],
    mut snapshot: impl FnMut(&S, usize) -> Result<()>,
) -> Result<usize> {
    let mut steps = 0;
    for (i, &target) in times.iter().enumerate() {
        let start = stepper.time();
        let tol = 1e-12 * target.abs().max(1.0);
        if !target.is_finite() || target < start - tol {
            return Err(PdeError::Parameter {
                name: "snapshot time",
                value: target,
                reason: "must be finite and not before the current time",
            });
        }
        if stepper.adaptive() {
            while target - stepper.time() > tol {
                let remaining = target - stepper.time();
                let n = (remaining / stepper.dt()).ceil().max(1.0);
                stepper.update(remaining / n)?;
                steps += 1;
            }
        } else if target - start > tol {
            let n = ((target - start) / stepper.dt() - 1e-9).ceil().max(1.0) as usize;
            let h = (target - start) / n as f64;
            for _ in 0..n {
                stepper.update(h)?;
            }
            steps += n;
        }
        snapshot(stepper, i)?;
    }
    Ok(steps)
}

/// Time-stepping scheme for [`NavierStokes2d`] (serde names: `fno`, `cn_rk3`, `cn_rk4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum Scheme {
    /// Crank–Nicolson for `L`, forward Euler for advection and forcing (FNO's generator).
    #[default]
    #[cfg_attr(feature = "serde", serde(rename = "fno"))]
    FnoEuler,
    /// Crank–Nicolson / Williamson low-storage RK3 (jax-cfd `crank_nicolson_rk3`).
    CnRk3,
    /// Crank–Nicolson / Carpenter–Kennedy low-storage RK4 (jax-cfd `crank_nicolson_rk4`).
    CnRk4,
}

impl Scheme {
    /// Largest CFL number `Δt (max|u|/Δx + max|v|/Δy)` accepted.
    ///
    /// For the RK schemes this is the linear stability limit of the explicit part on the
    /// dealiased spectrum (imaginary-axis stability interval of the RK method divided by
    /// `π · 2/3`). Forward Euler has no imaginary-axis stability and relies on viscous damping;
    /// 0.5 is a practical limit.
    pub fn cfl_max(self) -> f64 {
        match self {
            Scheme::FnoEuler => 0.5,
            Scheme::CnRk3 => 3f64.sqrt() / (std::f64::consts::PI * 2.0 / 3.0),
            Scheme::CnRk4 => 2.0 * 2f64.sqrt() / (std::f64::consts::PI * 2.0 / 3.0),
        }
    }

    /// Low-storage coefficients `(α, β, γ)` in jax-cfd's convention.
    fn coefficients(self) -> (&'static [f64], &'static [f64], &'static [f64]) {
        match self {
            Scheme::FnoEuler => (&[0.0, 1.0], &[0.0], &[1.0]),
            Scheme::CnRk3 => (
                &[0.0, 1.0 / 3.0, 0.75, 1.0],
                &[0.0, -5.0 / 9.0, -153.0 / 128.0],
                &[1.0 / 3.0, 15.0 / 16.0, 8.0 / 15.0],
            ),
            Scheme::CnRk4 => (
                &[0.0, 0.149_659_021_999_3, 0.370_400_957_364_4, 0.622_255_763_134_5, 0.958_282_130_674_8, 1.0],
                &[0.0, -0.417_890_474_5, -1.192_151_694_643, -1.697_784_692_471, -1.514_183_444_257],
                &[
                    0.149_659_021_999_3,
                    0.379_210_312_999_9,
                    0.822_955_029_386_9,
                    0.699_450_455_948_8,
                    0.153_057_247_968_1,
                ],
            ),
        }
    }
}

/// Vorticity forcing `f(x, y)`.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum Forcing {
    /// No forcing.
    #[default]
    None,
    /// FNO's forcing `A (sin 2π(x + y) + cos 2π(x + y))` (A = 0.1 in the FNO data sets, on [0,1)²).
    Fno {
        /// Amplitude `A`.
        amplitude: f64,
    },
    /// Kolmogorov forcing: the body force `A sin(κ y) x̂`, `κ = 2π n / Ly`, i.e. the vorticity
    /// forcing `−A κ cos(κ y)` (jax-cfd's `kolmogorov_forcing`; n = 4, A = 1 on [0,2π)²).
    Kolmogorov {
        /// Mode number `n` of the forcing along y.
        wavenumber: u32,
        /// Amplitude `A` of the body force.
        amplitude: f64,
    },
    /// An arbitrary vorticity forcing field `(ny, nx)` (not serialisable: serde reports an error).
    #[cfg_attr(feature = "serde", serde(skip))]
    Field(Array2<f64>),
}

impl Forcing {
    /// The forcing sampled on `grid`.
    ///
    /// # Errors
    /// [`PdeError::Shape`] / [`PdeError::NonFinite`] for a bad [`Forcing::Field`].
    pub fn field(&self, grid: &Grid2d) -> Result<Array2<f64>> {
        let tau = 2.0 * std::f64::consts::PI;
        Ok(match self {
            Forcing::None => Array2::zeros(grid.shape()),
            Forcing::Fno { amplitude } => {
                grid.field_from_fn(|x, y| amplitude * ((tau * (x + y)).sin() + (tau * (x + y)).cos()))
            }
            Forcing::Kolmogorov { wavenumber, amplitude } => {
                let kappa = tau * f64::from(*wavenumber) / grid.ly();
                grid.field_from_fn(|_, y| -amplitude * kappa * (kappa * y).cos())
            }
            Forcing::Field(f) => {
                grid.check_field("forcing", f.shape())?;
                ensure_finite("forcing", f.iter())?;
                f.clone()
            }
        })
    }
}

/// CFL-controlled adaptive time step: `Δt = min(dt_max, cfl / (max|u|/Δx + max|v|/Δy))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveDt {
    /// Target CFL number (must not exceed the scheme's [`Scheme::cfl_max`]).
    pub cfl: f64,
    /// Upper bound on the step.
    pub dt_max: f64,
}

/// Physical and numerical parameters of a Navier–Stokes run.
#[derive(Debug, Clone, PartialEq)]
pub struct NsParams {
    /// Kinematic viscosity `ν ≥ 0`.
    pub viscosity: f64,
    /// Linear drag `α ≥ 0`.
    pub drag: f64,
    /// Time step (the upper bound when `adaptive` is set).
    pub dt: f64,
    /// Time-stepping scheme.
    pub scheme: Scheme,
    /// Vorticity forcing.
    pub forcing: Forcing,
    /// Optional CFL-based adaptive time step.
    pub adaptive: Option<AdaptiveDt>,
}

impl Default for NsParams {
    /// FNO's `NavierStokes_V1e-3` setting: ν = 1e-3, Δt = 1e-4, FNO forcing, FNO scheme.
    fn default() -> Self {
        Self {
            viscosity: 1e-3,
            drag: 0.0,
            dt: 1e-4,
            scheme: Scheme::FnoEuler,
            forcing: Forcing::Fno { amplitude: 0.1 },
            adaptive: None,
        }
    }
}

impl NsParams {
    fn validate(&self) -> Result<()> {
        let checks: [(&'static str, f64, bool, &'static str); 3] = [
            ("viscosity", self.viscosity, self.viscosity >= 0.0, "must be finite and non-negative"),
            ("drag", self.drag, self.drag >= 0.0, "must be finite and non-negative"),
            ("dt", self.dt, self.dt > 0.0, "must be finite and positive"),
        ];
        for (name, value, ok, reason) in checks {
            if !(ok && value.is_finite()) {
                return Err(PdeError::Parameter { name, value, reason });
            }
        }
        if let Some(a) = self.adaptive
            && !(a.cfl > 0.0 && a.cfl <= self.scheme.cfl_max() && a.dt_max > 0.0 && a.dt_max.is_finite())
        {
            return Err(PdeError::Parameter {
                name: "cfl",
                value: a.cfl,
                reason: "must be in (0, cfl_max of the scheme] with a finite positive dt_max",
            });
        }
        Ok(())
    }
}

/// Buffers of one explicit-term evaluation, allocated once per solver.
#[derive(Debug, Clone)]
struct Work {
    /// Spectra of u, v, ∂ω/∂x, ∂ω/∂y (inverse-transformed in place).
    spec: [Array2<Complex64>; 4],
    /// The same four fields in physical space; `phys[0]` receives the advection term.
    phys: [Array2<f64>; 4],
    /// Explicit term `N̂ = −(u·∇ω)^ (dealiased) + f̂` and the low-storage accumulator `h`.
    explicit: Array2<Complex64>,
    h: Array2<Complex64>,
}

/// A 2D Navier–Stokes solver in vorticity form (see the module documentation).
#[derive(Debug, Clone)]
pub struct NavierStokes2d {
    grid: Grid2d,
    params: NsParams,
    w_hat: Array2<Complex64>,
    forcing_hat: Array2<Complex64>,
    /// `L = −ν|k|² − α` per mode.
    linear: Array2<f64>,
    /// `1/|k|²` (0 at k = 0): ω̂ ↦ ψ̂.
    inv_k2: Array2<f64>,
    dealias: Array2<f64>,
    time: f64,
    /// `(max|u|, max|v|)` of the latest explicit evaluation.
    max_velocity: (f64, f64),
    work: Work,
}

impl NavierStokes2d {
    /// A solver on `grid` starting from the vorticity `w0` at time 0.
    ///
    /// # Errors
    /// [`PdeError::Parameter`] for bad parameters, [`PdeError::Shape`] / [`PdeError::NonFinite`]
    /// for a bad initial condition or forcing field.
    pub fn new(grid: Grid2d, params: NsParams, w0: ArrayView2<f64>) -> Result<Self> {
        params.validate()?;
        grid.check_field("initial vorticity", w0.shape())?;
        ensure_finite("initial vorticity", w0.iter())?;
        let forcing_hat = grid.fft(params.forcing.field(&grid)?.view())?;
        let k2 = grid.k_squared();
        let linear = k2.mapv(|k2| -params.viscosity * k2 - params.drag);
        let inv_k2 = k2.mapv(|k2| if k2 > 0.0 { 1.0 / k2 } else { 0.0 });
        let z = grid.spectral_zeros();
        let f = Array2::zeros(grid.shape());
        let work = Work {
            spec: [z.clone(), z.clone(), z.clone(), z.clone()],
            phys: [f.clone(), f.clone(), f.clone(), f],
            explicit: z.clone(),
            h: z,
        };
        let mut solver = Self {
            w_hat: grid.fft(w0)?,
            dealias: grid.dealias_mask(),
            grid,
            params,
            forcing_hat,
            linear,
            inv_k2,
            time: 0.0,
            max_velocity: (0.0, 0.0),
            work,
        };
        let uv = solver.velocity()?;
        let max = |c: usize| uv.slice(s![c, .., ..]).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        solver.max_velocity = (max(0), max(1));
        Ok(solver)
    }

    /// The grid.
    pub fn grid(&self) -> &Grid2d {
        &self.grid
    }

    /// The parameters.
    pub fn params(&self) -> &NsParams {
        &self.params
    }

    /// Current vorticity spectrum `ω̂` (layout of [`Grid2d::spectral_zeros`]).
    pub fn vorticity_hat(&self) -> ArrayView2<'_, Complex64> {
        self.w_hat.view()
    }

    /// Current vorticity in physical space.
    ///
    /// # Errors
    /// Never in practice (the shapes are the solver's own).
    pub fn vorticity(&self) -> Result<Array2<f64>> {
        self.grid.ifft(self.w_hat.view())
    }

    /// Current velocity `(2, ny, nx)`, divergence-free with zero mean.
    ///
    /// # Errors
    /// Never in practice (the shapes are the solver's own).
    pub fn velocity(&self) -> Result<Array3<f64>> {
        velocity_from_vorticity(&self.grid, self.vorticity()?.view())
    }

    /// The CFL number a step `dt` would have at the latest known velocity.
    pub fn cfl(&self, dt: f64) -> f64 {
        dt * (self.max_velocity.0 / self.grid.dx() + self.max_velocity.1 / self.grid.dy())
    }

    /// Evaluates the explicit term `N̂(ω̂) = −(u·∇ω)^ (dealiased) + f̂` into `work.explicit` and
    /// records `max|u|`, `max|v|`.
    fn explicit_term(&mut self, w_hat: &Array2<Complex64>) -> Result<()> {
        let g = &self.grid;
        let (kx, ky) = (g.kx_deriv(), g.ky_deriv());
        let Work { spec, phys, explicit, .. } = &mut self.work;
        {
            // Spectra of u = ∂ψ/∂y, v = −∂ψ/∂x (ψ̂ = ω̂/|k|²), ∂ω/∂x and ∂ω/∂y, one column (kx) per
            // task: columns are contiguous in the spectral layout.
            let [su, sv, swx, swy] = spec;
            let i = Complex64::new(0.0, 1.0);
            su.axis_iter_mut(Axis(1))
                .into_par_iter()
                .zip(sv.axis_iter_mut(Axis(1)))
                .zip(swx.axis_iter_mut(Axis(1)))
                .zip(swy.axis_iter_mut(Axis(1)))
                .zip(w_hat.axis_iter(Axis(1)))
                .zip(self.inv_k2.axis_iter(Axis(1)))
                .enumerate()
                .with_min_len(8)
                .for_each(|(j, (((((mut cu, mut cv), mut cwx), mut cwy), w), ik2))| {
                    let ikx = i * kx[j];
                    let rows = cu.iter_mut().zip(cv.iter_mut()).zip(cwx.iter_mut()).zip(cwy.iter_mut());
                    for ((((u, v), wx), wy), ((&w, &ik2), &ky)) in rows.zip(w.iter().zip(ik2.iter()).zip(ky)) {
                        let psi = w * ik2;
                        *u = i * ky * psi;
                        *v = -ikx * psi;
                        *wx = ikx * w;
                        *wy = i * ky * w;
                    }
                });
        }
        // Four inverse transforms, two per rayon task.
        let [s0, s1, s2, s3] = spec;
        let [p0, p1, p2, p3] = phys;
        let (r1, r2) = rayon::join(
            || {
                g.inverse_consuming(s0.view_mut(), p0.view_mut())
                    .and_then(|_| g.inverse_consuming(s1.view_mut(), p1.view_mut()))
            },
            || {
                g.inverse_consuming(s2.view_mut(), p2.view_mut())
                    .and_then(|_| g.inverse_consuming(s3.view_mut(), p3.view_mut()))
            },
        );
        r1?;
        r2?;
        let (umax, vmax) = Zip::from(&mut *p0).and(&*p1).and(&*p2).and(&*p3).par_fold(
            || (0.0_f64, 0.0_f64),
            |(um, vm), u, &v, &wx, &wy| {
                let m = (um.max(u.abs()), vm.max(v.abs()));
                *u = *u * wx + v * wy;
                m
            },
            |a, b| (a.0.max(b.0), a.1.max(b.1)),
        );
        if !(umax.is_finite() && vmax.is_finite()) {
            return Err(PdeError::BlowUp { time: self.time });
        }
        self.max_velocity = (umax, vmax);
        // Only the x-modes the 2/3 rule keeps are needed.
        g.forward_truncated(p0.view(), explicit.view_mut(), g.dealias_kx_count())?;
        Zip::from(explicit).and(&self.dealias).and(&self.forcing_hat).par_for_each(|n, &d, &f| *n = f - *n * d);
        Ok(())
    }

    fn check_cfl(&self, dt: f64) -> Result<()> {
        let cfl = self.cfl(dt);
        let cfl_max = self.params.scheme.cfl_max();
        if cfl > cfl_max {
            let bound = dt * cfl_max / cfl;
            return Err(PdeError::Unstable { dt, bound, cfl, cfl_max });
        }
        Ok(())
    }
}

impl TimeStepper for NavierStokes2d {
    fn time(&self) -> f64 {
        self.time
    }

    fn dt(&self) -> f64 {
        match self.params.adaptive {
            None => self.params.dt,
            Some(a) => {
                let rate = self.max_velocity.0 / self.grid.dx() + self.max_velocity.1 / self.grid.dy();
                if rate > 0.0 { (a.cfl / rate).min(a.dt_max) } else { a.dt_max }
            }
        }
    }

    fn adaptive(&self) -> bool {
        self.params.adaptive.is_some()
    }

    /// One step of the low-storage IMEX scheme (jax-cfd's `low_storage_runge_kutta_crank_nicolson`):
    /// for each stage k, `h ← N(ω) + βₖ h`, `μ = ½Δt(αₖ₊₁ − αₖ)`,
    /// `ω ← (ω + γₖ Δt h + μ L ω) / (1 − μ L)`. With one stage (`α = [0, 1]`, `γ = [1]`) this is the
    /// FNO scheme.
    fn update(&mut self, dt: f64) -> Result<()> {
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(PdeError::Parameter { name: "dt", value: dt, reason: "must be finite and positive" });
        }
        let (alphas, betas, gammas) = self.params.scheme.coefficients();
        let mut w = std::mem::take(&mut self.w_hat);
        let result = (|| {
            for k in 0..betas.len() {
                self.explicit_term(&w)?;
                if k == 0 {
                    self.check_cfl(dt)?;
                }
                let mu = 0.5 * dt * (alphas[k + 1] - alphas[k]);
                let (beta, gdt) = (betas[k], gammas[k] * dt);
                Zip::from(&mut w).and(&mut self.work.h).and(&self.work.explicit).and(&self.linear).par_for_each(
                    |w, h, &n, &l| {
                        *h = if k == 0 { n } else { n + *h * beta };
                        *w = (*w * (1.0 + mu * l) + *h * gdt) / (1.0 - mu * l);
                    },
                );
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.w_hat = w;
                self.time += dt;
                Ok(())
            }
            Err(e) => {
                // A CFL rejection happens before the first stage changes `w`, so the state is
                // intact and the caller may retry with a smaller step; a blow-up leaves it as is.
                self.w_hat = w;
                Err(e)
            }
        }
    }
}

/// Snapshots of a run: vorticity `(T, ny, nx)` and optionally velocity `(T, 2, ny, nx)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// Snapshot times.
    pub times: Vec<f64>,
    /// Vorticity at each time.
    pub vorticity: Array3<f64>,
    /// Velocity at each time, when requested.
    pub velocity: Option<Array4<f64>>,
}

/// Integrates `solver` through `times`, recording the vorticity (and the velocity when
/// `with_velocity`) at each.
///
/// # Errors
/// As [`integrate`].
pub fn record(solver: &mut NavierStokes2d, times: &[f64], with_velocity: bool) -> Result<Trajectory> {
    let (ny, nx) = solver.grid().shape();
    let mut vorticity = Array3::zeros((times.len(), ny, nx));
    let mut velocity = with_velocity.then(|| Array4::zeros((times.len(), 2, ny, nx)));
    integrate(solver, times, |s, i| {
        let w = s.vorticity()?;
        if let Some(v) = velocity.as_mut() {
            v.index_axis_mut(Axis(0), i).assign(&velocity_from_vorticity(s.grid(), w.view())?);
        }
        vorticity.index_axis_mut(Axis(0), i).assign(&w);
        Ok(())
    })?;
    Ok(Trajectory { times: times.to_vec(), vorticity, velocity })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::spectrum::{enstrophy_of_vorticity, kinetic_energy};
    use std::f64::consts::PI;

    fn max_abs(a: &Array2<f64>) -> f64 {
        a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
    }

    /// A smooth band-limited initial vorticity (modes within the dealiased band of 32²).
    fn smooth_vorticity(g: &Grid2d) -> Array2<f64> {
        let k = 2.0 * PI / g.lx();
        g.field_from_fn(|x, y| {
            (k * x).sin() * (2.0 * k * y).cos() + 0.8 * (3.0 * k * x + k * y).cos() - 0.6 * (2.0 * k * (x - y)).sin()
                + 0.3 * (4.0 * k * y + 1.0).sin()
        })
    }

    #[test]
    fn taylor_green_decays_as_the_analytic_solution() {
        // ω = 2k cos(kx) cos(ky) is a steady Euler solution; with viscosity it decays as e^{−2νk²t}.
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        let k = 2.0;
        let w0 = g.field_from_fn(|x, y| 2.0 * k * (k * x).cos() * (k * y).cos());
        let nu = 0.01;
        for scheme in [Scheme::FnoEuler, Scheme::CnRk3, Scheme::CnRk4] {
            let params = NsParams { viscosity: nu, dt: 1e-3, scheme, forcing: Forcing::None, ..NsParams::default() };
            let mut ns = NavierStokes2d::new(g.clone(), params, w0.view()).unwrap();
            let t_end = 2.0;
            let steps = integrate(&mut ns, &[t_end], |_, _| Ok(())).unwrap();
            assert_eq!(steps, 2000);
            let exact = w0.mapv(|w| w * (-2.0 * nu * k * k * t_end).exp());
            let err = max_abs(&(&ns.vorticity().unwrap() - &exact)) / max_abs(&exact);
            assert!(err <= 1e-8, "{scheme:?}: relative error {err:e}");
        }
    }

    /// Final vorticity after integrating to `t_end` with `n` steps.
    fn run(scheme: Scheme, nu: f64, n: usize, t_end: f64) -> Array2<f64> {
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        let params = NsParams {
            viscosity: nu,
            dt: t_end / n as f64,
            scheme,
            forcing: Forcing::Kolmogorov { wavenumber: 2, amplitude: 1.0 },
            drag: 0.1,
            adaptive: None,
        };
        let mut ns = NavierStokes2d::new(g.clone(), params, smooth_vorticity(&g).view()).unwrap();
        integrate(&mut ns, &[t_end], |_, _| Ok(())).unwrap();
        ns.vorticity().unwrap()
    }

    fn observed_orders(scheme: Scheme, nu: f64, ns: &[usize]) -> Vec<f64> {
        let t_end = 0.5;
        let reference = run(Scheme::CnRk4, nu, 4 * ns[ns.len() - 1] * 4, t_end);
        let errs: Vec<f64> = ns.iter().map(|&n| max_abs(&(&run(scheme, nu, n, t_end) - &reference))).collect();
        errs.windows(2).map(|e| (e[0] / e[1]).log2()).collect()
    }

    #[test]
    fn schemes_converge_at_their_order() {
        // FNO's forward-Euler advection is first order. With viscosity the Crank–Nicolson stages
        // make the IMEX schemes second order (CN/RK3 reaches it from above: 2.44, 2.27, 2.07, 2.03
        // over n = 10..160); without the implicit part the explicit RK order shows.
        let cases: [(Scheme, f64, &[usize], std::ops::Range<f64>); 4] = [
            (Scheme::FnoEuler, 0.05, &[20, 40, 80], 0.95..1.1),
            (Scheme::CnRk3, 0.05, &[40, 80, 160], 1.95..2.15),
            (Scheme::CnRk4, 0.05, &[10, 20, 40], 1.95..2.05),
            (Scheme::CnRk3, 0.0, &[10, 20, 40], 2.9..3.1),
        ];
        for (scheme, nu, ns, range) in cases {
            for o in observed_orders(scheme, nu, ns) {
                assert!(range.contains(&o), "{scheme:?} with nu = {nu}: observed order {o}");
            }
        }
    }

    #[test]
    fn inviscid_unforced_flow_conserves_energy_and_enstrophy() {
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        let w0 = smooth_vorticity(&g);
        let params =
            NsParams { viscosity: 0.0, dt: 2e-3, scheme: Scheme::CnRk4, forcing: Forcing::None, ..NsParams::default() };
        let mut ns = NavierStokes2d::new(g.clone(), params, w0.view()).unwrap();
        let e0 = kinetic_energy(&g, ns.velocity().unwrap().view()).unwrap();
        let z0 = enstrophy_of_vorticity(&g, w0.view()).unwrap();
        integrate(&mut ns, &[1.0], |_, _| Ok(())).unwrap();
        let e1 = kinetic_energy(&g, ns.velocity().unwrap().view()).unwrap();
        let z1 = enstrophy_of_vorticity(&g, ns.vorticity().unwrap().view()).unwrap();
        // The flow did evolve...
        assert!(max_abs(&(&ns.vorticity().unwrap() - &w0)) > 0.1 * max_abs(&w0));
        // ...while the dealiased Galerkin system conserves both invariants up to the RK4 error.
        assert!(((e1 - e0) / e0).abs() < 1e-9, "energy drift {}", (e1 - e0) / e0);
        assert!(((z1 - z0) / z0).abs() < 1e-9, "enstrophy drift {}", (z1 - z0) / z0);
    }

    #[test]
    fn viscous_energy_budget_holds() {
        // dE/dt = −2ν Z − 2α E for unforced flow; integrate the right side by the trapezoid rule.
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        let (nu, drag) = (0.02, 0.05);
        let params =
            NsParams { viscosity: nu, drag, dt: 1e-3, scheme: Scheme::CnRk4, forcing: Forcing::None, adaptive: None };
        let mut ns = NavierStokes2d::new(g.clone(), params, smooth_vorticity(&g).view()).unwrap();
        let times: Vec<f64> = (0..=100).map(|i| i as f64 * 0.01).collect();
        let mut energy = Vec::new();
        let mut rate = Vec::new();
        integrate(&mut ns, &times, |s, _| {
            let e = kinetic_energy(&g, s.velocity()?.view())?;
            let z = enstrophy_of_vorticity(&g, s.vorticity()?.view())?;
            energy.push(e);
            rate.push(-2.0 * nu * z - 2.0 * drag * e);
            Ok(())
        })
        .unwrap();
        let integral: f64 = rate.windows(2).map(|r| 0.005 * (r[0] + r[1])).sum();
        let change = energy[100] - energy[0];
        assert!(change < -0.01 * energy[0], "energy must decay noticeably");
        assert!(((change - integral) / change).abs() < 1e-4, "budget mismatch {} vs {}", change, integral);
    }

    #[test]
    fn adaptive_dt_follows_cfl_and_hits_snapshot_times() {
        let g = Grid2d::square(64, 1.0).unwrap();
        let w0 = g.field_from_fn(|x, y| 10.0 * (2.0 * PI * x).sin() * (2.0 * PI * 2.0 * y).cos());
        let params = NsParams {
            dt: 1.0,
            adaptive: Some(AdaptiveDt { cfl: 0.4, dt_max: 0.01 }),
            scheme: Scheme::CnRk3,
            ..NsParams::default()
        };
        let mut ns = NavierStokes2d::new(g, params, w0.view()).unwrap();
        let dt0 = ns.dt();
        assert!((ns.cfl(dt0) - 0.4).abs() < 1e-12 || (dt0 - 0.01).abs() < 1e-15);
        let mut seen = Vec::new();
        let steps = integrate(&mut ns, &[0.05, 0.1], |s, _| {
            seen.push(s.time());
            Ok(())
        })
        .unwrap();
        assert!((seen[0] - 0.05).abs() < 1e-12 && (seen[1] - 0.1).abs() < 1e-12);
        assert!(steps >= (0.1 / dt0) as usize);
    }

    #[test]
    fn record_returns_consistent_vorticity_and_velocity_snapshots() {
        let g = Grid2d::square(32, 2.0 * PI).unwrap();
        let params = NsParams {
            viscosity: 0.01,
            dt: 5e-3,
            scheme: Scheme::CnRk3,
            forcing: Forcing::None,
            ..NsParams::default()
        };
        let mut ns = NavierStokes2d::new(g.clone(), params, smooth_vorticity(&g).view()).unwrap();
        let traj = record(&mut ns, &[0.0, 0.1, 0.2], true).unwrap();
        let vel = traj.velocity.as_ref().unwrap();
        assert_eq!(traj.vorticity.shape(), &[3, 32, 32]);
        assert_eq!(vel.shape(), &[3, 2, 32, 32]);
        assert_eq!(traj.vorticity.index_axis(Axis(0), 2), ns.vorticity().unwrap());
        for t in 0..3 {
            let w = crate::operators::vorticity(&g, vel.index_axis(Axis(0), t)).unwrap();
            let diff = (&w - &traj.vorticity.index_axis(Axis(0), t)).iter().fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(diff < 1e-12 * max_abs(&w), "snapshot {t}: {diff:e}");
            let div = crate::operators::divergence(&g, vel.index_axis(Axis(0), t)).unwrap();
            assert!(max_abs(&div) < 1e-12 * max_abs(&w));
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let g = Grid2d::square(32, 1.0).unwrap();
        let w = g.field_from_fn(|x, y| 50.0 * (2.0 * PI * x).sin() * (2.0 * PI * y).sin());
        let unstable = NsParams { dt: 0.1, ..NsParams::default() };
        let mut ns = NavierStokes2d::new(g.clone(), unstable, w.view()).unwrap();
        let before = ns.vorticity().unwrap();
        assert!(matches!(ns.update(0.1), Err(PdeError::Unstable { .. })));
        assert_eq!(ns.vorticity().unwrap(), before, "a rejected step leaves the state untouched");
        let mut nan = w.clone();
        nan[[3, 4]] = f64::NAN;
        assert!(matches!(
            NavierStokes2d::new(g.clone(), NsParams::default(), nan.view()),
            Err(PdeError::NonFinite { .. })
        ));
        let wrong = Array2::<f64>::zeros((32, 16));
        assert!(matches!(
            NavierStokes2d::new(g.clone(), NsParams::default(), wrong.view()),
            Err(PdeError::Shape { .. })
        ));
        let negative = NsParams { viscosity: -1.0, ..NsParams::default() };
        assert!(matches!(
            NavierStokes2d::new(g.clone(), negative, w.view()),
            Err(PdeError::Parameter { name: "viscosity", .. })
        ));
        let too_fast = NsParams { adaptive: Some(AdaptiveDt { cfl: 5.0, dt_max: 1.0 }), ..NsParams::default() };
        assert!(NavierStokes2d::new(g.clone(), too_fast, w.view()).is_err());
        let mut ok = NavierStokes2d::new(g, NsParams::default(), w.view()).unwrap();
        assert!(integrate(&mut ok, &[-1.0], |_, _| Ok(())).is_err());
    }
}
