//! Schedulers `(α_t, σ_t)` of affine probability paths `x_t = α_t x1 + σ_t x0`, with their time
//! derivatives.
//!
//! Time runs from the source (`t = 0`, noise `x0`) to the data (`t = 1`, `x1`), as in the
//! `flow_matching` library. Each scheduler gives `α_t`, `σ_t`, `α̇_t`, `σ̇_t` for a time tensor
//! ([`Scheduler::at_tensor`], networks' `f32`) and for one `f64` time ([`Scheduler::at`], solvers
//! and tests), and inverts the signal-to-noise ratio `α_t / σ_t` ([`Scheduler::snr_inverse`]).
//!
//! | scheduler | `α_t` | `σ_t` |
//! | --- | --- | --- |
//! | [`CondOtScheduler`] | `t` | `1 − (1 − σ_min) t` |
//! | [`PolynomialScheduler`] | `tⁿ` | `1 − tⁿ` |
//! | [`VpScheduler`] | `e^{−T(t)/2}` | `√(1 − e^{−T(t)})` |
//! | [`LinearVpScheduler`] | `t` | `√(1 − t²)` |
//! | [`CosineScheduler`] | `sin(πt/2)` | `cos(πt/2)` |
//! | [`VeScheduler`] | `1` | `σ_min (σ_max/σ_min)^(1 − t)` |
//!
//! with `T(t) = ½ (1 − t)² (β_max − β_min) + (1 − t) β_min` for the variance-preserving (VP)
//! schedule of score-based diffusion written in flow-matching time. Two schedules do not start at
//! pure noise: VP has `α_0 = e^{−(β_max + β_min)/4}` (≈ 6.5·10⁻³ for the default `β`), and the
//! variance-exploding (VE) schedule keeps `α_t = 1`, so `x_0 = x1 + σ_max x0` is only close to
//! the source `N(0, σ_max²)` when `σ_max` dwarfs the data; sampling then starts from `σ_max x0`,
//! neglecting the data.
//!
//! Derivatives are singular where a square root or a power vanishes (VP and linear VP at
//! `t = 1`, polynomial with `n < 1` at `t = 0`): the formulas then return infinities, as the
//! reference implementation does.

use std::f64::consts::FRAC_PI_2;
use std::fmt;

use burn::tensor::Tensor;

use super::PathError;

/// `α_t`, `σ_t` and their time derivatives at one `f64` time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerValues {
    /// Signal coefficient `α_t`.
    pub alpha_t: f64,
    /// Noise coefficient `σ_t`.
    pub sigma_t: f64,
    /// `dα_t/dt`.
    pub d_alpha_t: f64,
    /// `dσ_t/dt`.
    pub d_sigma_t: f64,
}

impl SchedulerValues {
    /// The signal-to-noise ratio `α_t / σ_t`.
    pub fn snr(&self) -> f64 {
        self.alpha_t / self.sigma_t
    }
}

/// `α_t`, `σ_t` and their time derivatives for a tensor of times, each of the shape of `t`.
#[derive(Debug, Clone)]
pub struct SchedulerOutput {
    /// Signal coefficient `α_t`.
    pub alpha_t: Tensor<1>,
    /// Noise coefficient `σ_t`.
    pub sigma_t: Tensor<1>,
    /// `dα_t/dt`.
    pub d_alpha_t: Tensor<1>,
    /// `dσ_t/dt`.
    pub d_sigma_t: Tensor<1>,
}

/// A schedule `(α_t, σ_t)` of an affine probability path.
pub trait Scheduler: fmt::Debug + Send + Sync {
    /// The schedule and its derivatives at time `t ∈ [0, 1]`, in `f64`.
    fn at(&self, t: f64) -> SchedulerValues;

    /// The schedule and its derivatives for every entry of `t`, on `t`'s device.
    ///
    /// # Shapes
    /// `t`: `[n]`; every output: `[n]`.
    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput;

    /// The time `t` at which `α_t / σ_t = snr`. Outside the range of the ratio over `[0, 1]` the
    /// formula extrapolates (the result may leave `[0, 1]` or be NaN).
    fn snr_inverse(&self, snr: f64) -> f64;
}

fn check(name: &'static str, value: f64, ok: bool, reason: &'static str) -> Result<(), PathError> {
    if value.is_finite() && ok { Ok(()) } else { Err(PathError::Parameter { name, value, reason }) }
}

/// Conditional optimal transport: `α_t = t`, `σ_t = 1 − (1 − σ_min) t`, so that the conditional
/// velocity `x1 − (1 − σ_min) x0` is constant along each path.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CondOtScheduler {
    sigma_min: f64,
}

impl CondOtScheduler {
    /// The schedule with final noise level `σ_min ∈ [0, 1)`.
    ///
    /// # Errors
    /// [`PathError::Parameter`] naming `sigma_min` outside `[0, 1)`.
    pub fn new(sigma_min: f64) -> Result<Self, PathError> {
        check("sigma_min", sigma_min, (0.0..1.0).contains(&sigma_min), "must be in [0, 1)")?;
        Ok(Self { sigma_min })
    }

    /// The final noise level `σ_min`.
    pub fn sigma_min(&self) -> f64 {
        self.sigma_min
    }
}

impl Scheduler for CondOtScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        let c = 1.0 - self.sigma_min;
        SchedulerValues { alpha_t: t, sigma_t: 1.0 - c * t, d_alpha_t: 1.0, d_sigma_t: -c }
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        let c = 1.0 - self.sigma_min;
        SchedulerOutput {
            sigma_t: t.clone().mul_scalar(-c).add_scalar(1.0),
            d_alpha_t: t.ones_like(),
            d_sigma_t: t.full_like(-c),
            alpha_t: t,
        }
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        snr / (1.0 + (1.0 - self.sigma_min) * snr)
    }
}

/// Polynomial convex schedule: `α_t = tⁿ`, `σ_t = 1 − tⁿ` (`n = 1` is CondOT with `σ_min = 0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolynomialScheduler {
    n: f64,
}

impl PolynomialScheduler {
    /// The schedule of exponent `n > 0`.
    ///
    /// # Errors
    /// [`PathError::Parameter`] naming `n` if it is not finite and positive.
    pub fn new(n: f64) -> Result<Self, PathError> {
        check("n", n, n > 0.0, "must be finite and positive")?;
        Ok(Self { n })
    }

    /// The exponent `n`.
    pub fn n(&self) -> f64 {
        self.n
    }
}

impl Scheduler for PolynomialScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        let a = t.powf(self.n);
        let da = self.n * t.powf(self.n - 1.0);
        SchedulerValues { alpha_t: a, sigma_t: 1.0 - a, d_alpha_t: da, d_sigma_t: -da }
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        let a = t.clone().powf_scalar(self.n);
        let da = t.powf_scalar(self.n - 1.0).mul_scalar(self.n);
        SchedulerOutput {
            sigma_t: a.clone().neg().add_scalar(1.0),
            d_sigma_t: da.clone().neg(),
            alpha_t: a,
            d_alpha_t: da,
        }
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        (snr / (1.0 + snr)).powf(1.0 / self.n)
    }
}

/// Variance preserving (the VP-SDE of score-based diffusion in flow-matching time):
/// `α_t = e^{−T/2}`, `σ_t = √(1 − e^{−T})`, `T(t) = ½ (1 − t)² (β_max − β_min) + (1 − t) β_min`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpScheduler {
    beta_min: f64,
    beta_max: f64,
}

impl Default for VpScheduler {
    /// `β_min = 0.1`, `β_max = 20`, as in the `flow_matching` library and Song et al. (2021).
    fn default() -> Self {
        Self { beta_min: 0.1, beta_max: 20.0 }
    }
}

impl VpScheduler {
    /// The schedule with `0 ≤ β_min < β_max`.
    ///
    /// # Errors
    /// [`PathError::Parameter`] naming `beta_min` (negative or not finite) or `beta_max` (not
    /// finite or not above `beta_min`).
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self, PathError> {
        check("beta_min", beta_min, beta_min >= 0.0, "must be finite and non-negative")?;
        check("beta_max", beta_max, beta_max > beta_min, "must be finite and greater than beta_min")?;
        Ok(Self { beta_min, beta_max })
    }

    /// `β_min`.
    pub fn beta_min(&self) -> f64 {
        self.beta_min
    }

    /// `β_max`.
    pub fn beta_max(&self) -> f64 {
        self.beta_max
    }
}

impl Scheduler for VpScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        let (b, db) = (self.beta_min, self.beta_max - self.beta_min);
        let s = 1.0 - t;
        let big_t = 0.5 * s * s * db + s * b;
        let d_big_t = -s * db - b;
        let alpha = (-0.5 * big_t).exp();
        // 1 − e^{−T} without cancellation near t = 1.
        let sigma = (-(-big_t).exp_m1()).sqrt();
        SchedulerValues {
            alpha_t: alpha,
            sigma_t: sigma,
            d_alpha_t: -0.5 * d_big_t * alpha,
            d_sigma_t: 0.5 * d_big_t * alpha * alpha / sigma,
        }
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        let (b, db) = (self.beta_min, self.beta_max - self.beta_min);
        let s = t.neg().add_scalar(1.0);
        let big_t = s.clone().mul(s.clone()).mul_scalar(0.5 * db).add(s.clone().mul_scalar(b));
        let d_big_t = s.mul_scalar(-db).add_scalar(-b);
        let alpha = big_t.clone().mul_scalar(-0.5).exp();
        let alpha2 = big_t.neg().exp();
        let sigma = alpha2.clone().neg().add_scalar(1.0).sqrt();
        SchedulerOutput {
            d_alpha_t: d_big_t.clone().mul(alpha.clone()).mul_scalar(-0.5),
            d_sigma_t: d_big_t.mul(alpha2).div(sigma.clone()).mul_scalar(0.5),
            alpha_t: alpha,
            sigma_t: sigma,
        }
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        let big_t = -(snr * snr / (snr * snr + 1.0)).ln();
        let (b, db) = (self.beta_min, self.beta_max - self.beta_min);
        1.0 - (-b + (b * b + 2.0 * db * big_t).sqrt()) / db
    }
}

/// Linear variance preserving: `α_t = t`, `σ_t = √(1 − t²)`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinearVpScheduler;

impl Scheduler for LinearVpScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        let sigma = ((1.0 - t) * (1.0 + t)).sqrt();
        SchedulerValues { alpha_t: t, sigma_t: sigma, d_alpha_t: 1.0, d_sigma_t: -t / sigma }
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        let sigma = t.clone().mul(t.clone()).neg().add_scalar(1.0).sqrt();
        SchedulerOutput {
            d_sigma_t: t.clone().neg().div(sigma.clone()),
            d_alpha_t: t.ones_like(),
            sigma_t: sigma,
            alpha_t: t,
        }
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        (snr * snr / (1.0 + snr * snr)).sqrt()
    }
}

/// Cosine: `α_t = sin(πt/2)`, `σ_t = cos(πt/2)` (variance preserving, `α² + σ² = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CosineScheduler;

impl Scheduler for CosineScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        let (s, c) = (FRAC_PI_2 * t).sin_cos();
        SchedulerValues { alpha_t: s, sigma_t: c, d_alpha_t: FRAC_PI_2 * c, d_sigma_t: -FRAC_PI_2 * s }
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        let angle = t.mul_scalar(FRAC_PI_2);
        let (s, c) = (angle.clone().sin(), angle.cos());
        SchedulerOutput {
            d_alpha_t: c.clone().mul_scalar(FRAC_PI_2),
            d_sigma_t: s.clone().mul_scalar(-FRAC_PI_2),
            alpha_t: s,
            sigma_t: c,
        }
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        snr.atan() / FRAC_PI_2
    }
}

/// Variance exploding: `α_t = 1`, `σ_t = σ_min (σ_max/σ_min)^(1 − t)` (the VE-SDE of score-based
/// diffusion with `t = 1` the data).
///
/// At `t = 0`, `x_t = x1 + σ_max x0`: the source is effectively `N(0, σ_max²)` only when
/// `σ_max` is large compared with the data, and sampling starts from `σ_max x0`, neglecting the
/// data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VeScheduler {
    sigma_min: f64,
    sigma_max: f64,
}

impl VeScheduler {
    /// The schedule with `0 < σ_min < σ_max`.
    ///
    /// # Errors
    /// [`PathError::Parameter`] naming `sigma_min` (not finite and positive) or `sigma_max` (not
    /// finite or not above `sigma_min`).
    pub fn new(sigma_min: f64, sigma_max: f64) -> Result<Self, PathError> {
        check("sigma_min", sigma_min, sigma_min > 0.0, "must be finite and positive")?;
        check("sigma_max", sigma_max, sigma_max > sigma_min, "must be finite and greater than sigma_min")?;
        Ok(Self { sigma_min, sigma_max })
    }

    /// `σ_min`, the noise level at the data end `t = 1`.
    pub fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    /// `σ_max`, the noise level at the source end `t = 0`.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    fn log_ratio(&self) -> f64 {
        (self.sigma_max / self.sigma_min).ln()
    }
}

impl Scheduler for VeScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        let l = self.log_ratio();
        let sigma = self.sigma_min * (l * (1.0 - t)).exp();
        SchedulerValues { alpha_t: 1.0, sigma_t: sigma, d_alpha_t: 0.0, d_sigma_t: -l * sigma }
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        let l = self.log_ratio();
        let sigma = t.clone().mul_scalar(-l).add_scalar(l).exp().mul_scalar(self.sigma_min);
        SchedulerOutput {
            alpha_t: t.ones_like(),
            d_alpha_t: t.zeros_like(),
            d_sigma_t: sigma.clone().mul_scalar(-l),
            sigma_t: sigma,
        }
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        // σ_t = 1/snr.
        1.0 - (1.0 / (snr * self.sigma_min)).ln() / self.log_ratio()
    }
}

/// Any of the schedulers, for choosing one at run time (from a config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyScheduler {
    /// [`CondOtScheduler`].
    CondOt(CondOtScheduler),
    /// [`PolynomialScheduler`].
    Polynomial(PolynomialScheduler),
    /// [`VpScheduler`].
    Vp(VpScheduler),
    /// [`LinearVpScheduler`].
    LinearVp(LinearVpScheduler),
    /// [`CosineScheduler`].
    Cosine(CosineScheduler),
    /// [`VeScheduler`].
    Ve(VeScheduler),
}

impl Default for AnyScheduler {
    /// CondOT with `σ_min = 0`.
    fn default() -> Self {
        Self::CondOt(CondOtScheduler::default())
    }
}

impl AnyScheduler {
    fn inner(&self) -> &dyn Scheduler {
        match self {
            Self::CondOt(s) => s,
            Self::Polynomial(s) => s,
            Self::Vp(s) => s,
            Self::LinearVp(s) => s,
            Self::Cosine(s) => s,
            Self::Ve(s) => s,
        }
    }
}

impl Scheduler for AnyScheduler {
    fn at(&self, t: f64) -> SchedulerValues {
        self.inner().at(t)
    }

    fn at_tensor(&self, t: Tensor<1>) -> SchedulerOutput {
        self.inner().at_tensor(t)
    }

    fn snr_inverse(&self, snr: f64) -> f64 {
        self.inner().snr_inverse(snr)
    }
}

macro_rules! any_from {
    ($($variant:ident($ty:ty)),*) => {
        $(impl From<$ty> for AnyScheduler {
            fn from(s: $ty) -> Self {
                Self::$variant(s)
            }
        })*
    };
}

any_from!(
    CondOt(CondOtScheduler),
    Polynomial(PolynomialScheduler),
    Vp(VpScheduler),
    LinearVp(LinearVpScheduler),
    Cosine(CosineScheduler),
    Ve(VeScheduler)
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn all() -> Vec<(&'static str, AnyScheduler)> {
        vec![
            ("condot", CondOtScheduler::default().into()),
            ("condot_sigma_min", CondOtScheduler::new(0.01).unwrap().into()),
            ("polynomial_2", PolynomialScheduler::new(2.0).unwrap().into()),
            ("polynomial_0.5", PolynomialScheduler::new(0.5).unwrap().into()),
            ("vp", VpScheduler::default().into()),
            ("linear_vp", LinearVpScheduler.into()),
            ("cosine", CosineScheduler.into()),
            ("ve", VeScheduler::new(0.01, 50.0).unwrap().into()),
        ]
    }

    /// Interior times, away from the singular endpoints of some derivatives.
    fn times() -> Vec<f64> {
        (1..20).map(|i| i as f64 / 20.0).collect()
    }

    #[test]
    fn derivatives_match_central_differences() {
        let h = 1e-6;
        for (name, s) in all() {
            for t in times() {
                let (p, m, v) = (s.at(t + h), s.at(t - h), s.at(t));
                for (what, fd, exact) in [
                    ("alpha", (p.alpha_t - m.alpha_t) / (2.0 * h), v.d_alpha_t),
                    ("sigma", (p.sigma_t - m.sigma_t) / (2.0 * h), v.d_sigma_t),
                ] {
                    // The difference quotient carries O(h²) truncation and O(ε/h) rounding error,
                    // both below 1e-6 relative for these schedules.
                    assert!(
                        (fd - exact).abs() <= 1e-6 * exact.abs().max(1e-3),
                        "{name} d{what} at t = {t}: finite difference {fd}, exact {exact}"
                    );
                }
            }
        }
    }

    #[test]
    fn boundary_values() {
        let exact = |name: &str, got: f64, want: f64| assert!((got - want).abs() <= 1e-15, "{name}: {got} != {want}");
        for (name, s) in all() {
            let (start, end) = (s.at(0.0), s.at(1.0));
            exact(name, end.alpha_t, 1.0);
            match s {
                AnyScheduler::CondOt(c) => exact(name, end.sigma_t, c.sigma_min()),
                AnyScheduler::Ve(v) => {
                    exact(name, end.sigma_t, v.sigma_min());
                    exact(name, start.alpha_t, 1.0);
                    assert!((start.sigma_t / v.sigma_max() - 1.0).abs() < 1e-14);
                }
                AnyScheduler::Vp(v) => {
                    exact(name, end.sigma_t, 0.0);
                    let a0 = (-(v.beta_max() + v.beta_min()) / 4.0).exp();
                    assert!((start.alpha_t / a0 - 1.0).abs() < 1e-14);
                    assert!((start.alpha_t.powi(2) + start.sigma_t.powi(2) - 1.0).abs() < 1e-15);
                }
                _ => exact(name, end.sigma_t, 0.0),
            }
            if !matches!(s, AnyScheduler::Ve(_) | AnyScheduler::Vp(_)) {
                exact(name, start.alpha_t, 0.0);
                exact(name, start.sigma_t, 1.0);
            }
        }
    }

    #[test]
    fn variance_preserving_schedules_keep_unit_variance() {
        for s in [AnyScheduler::from(VpScheduler::default()), LinearVpScheduler.into(), CosineScheduler.into()] {
            for t in times() {
                let v = s.at(t);
                assert!((v.alpha_t.powi(2) + v.sigma_t.powi(2) - 1.0).abs() < 1e-14, "{s:?} at {t}");
            }
        }
    }

    #[test]
    fn snr_inverse_inverts_the_signal_to_noise_ratio() {
        for (name, s) in all() {
            for t in times() {
                let back = s.snr_inverse(s.at(t).snr());
                assert!((back - t).abs() < 1e-11, "{name}: t = {t}, snr_inverse gives {back}");
            }
        }
    }

    #[test]
    fn tensor_schedule_matches_f64_schedule() {
        let device = Device::default();
        let ts: Vec<f32> = times().iter().map(|&t| t as f32).collect();
        for (name, s) in all() {
            let out = s.at_tensor(Tensor::from_floats(ts.as_slice(), &device));
            let read = |x: Tensor<1>| x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let got = [read(out.alpha_t), read(out.sigma_t), read(out.d_alpha_t), read(out.d_sigma_t)];
            for (i, &t) in ts.iter().enumerate() {
                let v = s.at(f64::from(t));
                let want = [v.alpha_t, v.sigma_t, v.d_alpha_t, v.d_sigma_t];
                for (g, w) in got.iter().zip(want) {
                    // f32 evaluation: a few ulps of the result, plus the amplification of the
                    // rounding of intermediate terms (exponents up to ~10 for VP and VE).
                    let tol = 2e-5 * w.abs().max(1.0);
                    assert!((f64::from(g[i]) - w).abs() <= tol, "{name} at t = {t}: {} vs {w}", g[i]);
                }
            }
        }
    }

    #[test]
    fn invalid_parameters_are_rejected_by_name() {
        let name = |e: PathError| match e {
            PathError::Parameter { name, .. } => name,
            _ => "(not a parameter error)",
        };
        assert_eq!(name(CondOtScheduler::new(1.0).unwrap_err()), "sigma_min");
        assert_eq!(name(CondOtScheduler::new(-0.1).unwrap_err()), "sigma_min");
        assert_eq!(name(PolynomialScheduler::new(0.0).unwrap_err()), "n");
        assert_eq!(name(PolynomialScheduler::new(f64::NAN).unwrap_err()), "n");
        assert_eq!(name(VpScheduler::new(20.0, 20.0).unwrap_err()), "beta_max");
        assert_eq!(name(VpScheduler::new(21.0, 20.0).unwrap_err()), "beta_max");
        assert_eq!(name(VpScheduler::new(-1.0, 20.0).unwrap_err()), "beta_min");
        assert_eq!(name(VeScheduler::new(0.0, 1.0).unwrap_err()), "sigma_min");
        assert_eq!(name(VeScheduler::new(1.0, 1.0).unwrap_err()), "sigma_max");
        assert_eq!(name(VeScheduler::new(1.0, f64::INFINITY).unwrap_err()), "sigma_max");
        let msg = VpScheduler::new(20.0, 10.0).unwrap_err().to_string();
        assert!(msg.contains("beta_max") && msg.contains("10"), "{msg}");
    }
}
