//! Affine probability paths `x_t = α_t x1 + σ_t x0` and conversions between the
//! parameterisations of a prediction.
//!
//! Given `x_t` and `t`, any one of the velocity `ẋ_t = α̇_t x1 + σ̇_t x0`, the data point `x1`
//! ("target") and the noise `x0` ("epsilon") determines the other two, because
//!
//! ```text
//! ⎡x_t⎤   ⎡α_t  σ_t⎤ ⎡x1⎤
//! ⎣ẋ_t⎦ = ⎣α̇_t  σ̇_t⎦ ⎣x0⎦ .
//! ```
//!
//! Eliminating the unknown gives each conversion as `a_t x_t + b_t y` (`y` the given quantity),
//! as in the `flow_matching` library's `AffineProbPath`:
//!
//! | from → to | `a_t` | `b_t` |
//! | --- | --- | --- |
//! | target → velocity | `σ̇/σ` | `(α̇σ − σ̇α)/σ` |
//! | epsilon → velocity | `α̇/α` | `(σ̇α − α̇σ)/α` |
//! | velocity → target | `−σ̇/(α̇σ − σ̇α)` | `σ/(α̇σ − σ̇α)` |
//! | epsilon → target | `1/α` | `−σ/α` |
//! | velocity → epsilon | `−α̇/(σ̇α − α̇σ)` | `α/(σ̇α − α̇σ)` |
//! | target → epsilon | `1/σ` | `−α/σ` |
//!
//! Conversions that divide by `σ_t` are singular where the path reaches the data exactly
//! (`σ_1 = 0`), those that divide by `α_t` where it starts at pure noise (`α_0 = 0`); the results
//! there are infinite or NaN.
//!
//! Times are a tensor `t` of length `B` (one per sample, axis 0 of the fields) or of length 1
//! (one time for the whole batch, as ODE solvers use); either is broadcast over the other axes.

use burn::tensor::Tensor;

use super::PathError;
use super::scheduler::{Scheduler, SchedulerOutput};

/// A point on the conditional path between `x0` and `x1`, with its regression target.
#[derive(Debug, Clone)]
pub struct PathSample<const D: usize> {
    /// Source (noise) samples.
    pub x0: Tensor<D>,
    /// Target (data) samples.
    pub x1: Tensor<D>,
    /// Times, `[B]` or `[1]`.
    pub t: Tensor<1>,
    /// `x_t = α_t x1 + σ_t x0`.
    pub xt: Tensor<D>,
    /// The conditional velocity `ẋ_t = α̇_t x1 + σ̇_t x0`, the flow-matching regression target.
    pub dxt: Tensor<D>,
}

/// The affine probability path of a [`Scheduler`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AffinePath<S: Scheduler> {
    scheduler: S,
}

impl<S: Scheduler> AffinePath<S> {
    /// The path `x_t = α_t x1 + σ_t x0` of `scheduler`.
    pub fn new(scheduler: S) -> Self {
        Self { scheduler }
    }

    /// The scheduler.
    pub fn scheduler(&self) -> &S {
        &self.scheduler
    }

    /// Samples the conditional path: `x_t = α_t x1 + σ_t x0` and `ẋ_t = α̇_t x1 + σ̇_t x0`.
    ///
    /// # Shapes
    /// `x0`, `x1`: `[B, ...]` (equal); `t`: `[B]` or `[1]`; `xt`, `dxt`: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] if `x0` and `x1` differ in shape or `t` is neither `[B]` nor `[1]`.
    pub fn sample<const D: usize>(
        &self,
        x0: Tensor<D>,
        x1: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<PathSample<D>, PathError> {
        same_shape("x1", &x0, &x1)?;
        check_time(&t, &x0)?;
        let s = self.scheduler.at_tensor(t.clone());
        let (alpha, sigma) = (expand::<D>(s.alpha_t), expand::<D>(s.sigma_t));
        let (d_alpha, d_sigma) = (expand::<D>(s.d_alpha_t), expand::<D>(s.d_sigma_t));
        let xt = x1.clone().mul(alpha).add(x0.clone().mul(sigma));
        let dxt = x1.clone().mul(d_alpha).add(x0.clone().mul(d_sigma));
        Ok(PathSample { x0, x1, t, xt, dxt })
    }

    /// The velocity at `x_t` of the path ending at the predicted data point `x1`.
    ///
    /// # Shapes
    /// `x1`, `xt`: `[B, ...]`; `t`: `[B]` or `[1]`; output: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] as for [`AffinePath::sample`].
    pub fn target_to_velocity<const D: usize>(
        &self,
        x1: Tensor<D>,
        xt: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<Tensor<D>, PathError> {
        self.combine(xt, x1, t, |s| {
            let a = s.d_sigma_t.clone().div(s.sigma_t.clone());
            let b = s.d_alpha_t.mul(s.sigma_t.clone()).sub(s.d_sigma_t.mul(s.alpha_t)).div(s.sigma_t);
            (a, b)
        })
    }

    /// The velocity at `x_t` of the path started from the predicted noise `x0` ("epsilon").
    ///
    /// # Shapes
    /// `epsilon`, `xt`: `[B, ...]`; `t`: `[B]` or `[1]`; output: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] as for [`AffinePath::sample`].
    pub fn epsilon_to_velocity<const D: usize>(
        &self,
        epsilon: Tensor<D>,
        xt: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<Tensor<D>, PathError> {
        self.combine(xt, epsilon, t, |s| {
            let a = s.d_alpha_t.clone().div(s.alpha_t.clone());
            let b = s.d_sigma_t.mul(s.alpha_t.clone()).sub(s.d_alpha_t.mul(s.sigma_t)).div(s.alpha_t);
            (a, b)
        })
    }

    /// The data point `x1` reached from `x_t` along the path with velocity `velocity`.
    ///
    /// # Shapes
    /// `velocity`, `xt`: `[B, ...]`; `t`: `[B]` or `[1]`; output: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] as for [`AffinePath::sample`].
    pub fn velocity_to_target<const D: usize>(
        &self,
        velocity: Tensor<D>,
        xt: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<Tensor<D>, PathError> {
        self.combine(xt, velocity, t, |s| {
            let det = s.d_alpha_t.mul(s.sigma_t.clone()).sub(s.d_sigma_t.clone().mul(s.alpha_t));
            (s.d_sigma_t.neg().div(det.clone()), s.sigma_t.div(det))
        })
    }

    /// The data point `x1` of the path through `x_t` started from the noise `epsilon`.
    ///
    /// # Shapes
    /// `epsilon`, `xt`: `[B, ...]`; `t`: `[B]` or `[1]`; output: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] as for [`AffinePath::sample`].
    pub fn epsilon_to_target<const D: usize>(
        &self,
        epsilon: Tensor<D>,
        xt: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<Tensor<D>, PathError> {
        self.combine(xt, epsilon, t, |s| (s.alpha_t.clone().recip(), s.sigma_t.neg().div(s.alpha_t)))
    }

    /// The noise `x0` ("epsilon") of the path through `x_t` with velocity `velocity`.
    ///
    /// # Shapes
    /// `velocity`, `xt`: `[B, ...]`; `t`: `[B]` or `[1]`; output: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] as for [`AffinePath::sample`].
    pub fn velocity_to_epsilon<const D: usize>(
        &self,
        velocity: Tensor<D>,
        xt: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<Tensor<D>, PathError> {
        self.combine(xt, velocity, t, |s| {
            let det = s.d_sigma_t.mul(s.alpha_t.clone()).sub(s.d_alpha_t.clone().mul(s.sigma_t));
            (s.d_alpha_t.neg().div(det.clone()), s.alpha_t.div(det))
        })
    }

    /// The noise `x0` ("epsilon") of the path through `x_t` ending at the data point `x1`.
    ///
    /// # Shapes
    /// `x1`, `xt`: `[B, ...]`; `t`: `[B]` or `[1]`; output: `[B, ...]`.
    ///
    /// # Errors
    /// [`PathError::Shape`] as for [`AffinePath::sample`].
    pub fn target_to_epsilon<const D: usize>(
        &self,
        x1: Tensor<D>,
        xt: Tensor<D>,
        t: Tensor<1>,
    ) -> Result<Tensor<D>, PathError> {
        self.combine(xt, x1, t, |s| (s.sigma_t.clone().recip(), s.alpha_t.neg().div(s.sigma_t)))
    }

    /// `a_t x_t + b_t y` with `(a_t, b_t) = coefficients(scheduler(t))`, broadcast per sample.
    fn combine<const D: usize>(
        &self,
        xt: Tensor<D>,
        y: Tensor<D>,
        t: Tensor<1>,
        coefficients: impl FnOnce(SchedulerOutput) -> (Tensor<1>, Tensor<1>),
    ) -> Result<Tensor<D>, PathError> {
        same_shape("xt", &y, &xt)?;
        check_time(&t, &xt)?;
        let (a, b) = coefficients(self.scheduler.at_tensor(t));
        Ok(xt.mul(expand::<D>(a)).add(y.mul(expand::<D>(b))))
    }
}

/// `[n]` reshaped to `[n, 1, ..., 1]` for broadcasting over a rank-`D` batch.
fn expand<const D: usize>(c: Tensor<1>) -> Tensor<D> {
    let mut shape = [1usize; D];
    if let Some(first) = shape.first_mut() {
        *first = c.dims()[0];
    }
    c.reshape(shape)
}

fn same_shape<const D: usize>(what: &'static str, reference: &Tensor<D>, x: &Tensor<D>) -> Result<(), PathError> {
    let (want, got) = (reference.dims(), x.dims());
    if want == got { Ok(()) } else { Err(PathError::Shape { what, expected: want.to_vec(), got: got.to_vec() }) }
}

fn check_time<const D: usize>(t: &Tensor<1>, x: &Tensor<D>) -> Result<(), PathError> {
    let batch = x.dims().first().copied().unwrap_or(0);
    let n = t.dims()[0];
    if D >= 1 && (n == batch || n == 1) {
        Ok(())
    } else {
        Err(PathError::Shape {
            what: "t (one time per sample, or one for the batch)",
            expected: vec![batch],
            got: vec![n],
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::path::scheduler::{
        AnyScheduler, CondOtScheduler, CosineScheduler, LinearVpScheduler, PolynomialScheduler, VeScheduler,
        VpScheduler,
    };
    use burn::tensor::{Device, TensorData};
    use fieldflow_pde::rng::stream;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    fn normal<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
        let mut rng = stream(seed, 0);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.sample::<f64, _>(StandardNormal) as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
        x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        values(a).iter().zip(values(b)).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
    }

    fn schedulers() -> Vec<AnyScheduler> {
        vec![
            CondOtScheduler::default().into(),
            CondOtScheduler::new(0.05).unwrap().into(),
            PolynomialScheduler::new(1.5).unwrap().into(),
            VpScheduler::default().into(),
            LinearVpScheduler.into(),
            CosineScheduler.into(),
            VeScheduler::new(0.01, 10.0).unwrap().into(),
        ]
    }

    /// Times away from the endpoints where some conversions are singular.
    fn times(device: &Device) -> Tensor<1> {
        Tensor::from_floats([0.25, 0.4, 0.55, 0.7, 0.8, 0.9], device)
    }

    #[test]
    fn conversions_recover_the_sample_they_come_from() {
        let device = Device::default();
        for s in schedulers() {
            let path = AffinePath::new(s);
            let (x0, x1) = (normal([6, 2, 4, 3], 1, &device), normal([6, 2, 4, 3], 2, &device));
            let p = path.sample(x0, x1, times(&device)).unwrap();
            let t = || p.t.clone();
            // Inputs are O(1); the conversions amplify f32 rounding by at most ~20 here (1/α_t
            // of VP at t = 0.25), so 1e-4 is a few hundred ulps of the worst case.
            let tol = 1e-4;
            let checks = [
                ("target_to_velocity", path.target_to_velocity(p.x1.clone(), p.xt.clone(), t()).unwrap(), &p.dxt),
                ("epsilon_to_velocity", path.epsilon_to_velocity(p.x0.clone(), p.xt.clone(), t()).unwrap(), &p.dxt),
                ("velocity_to_target", path.velocity_to_target(p.dxt.clone(), p.xt.clone(), t()).unwrap(), &p.x1),
                ("epsilon_to_target", path.epsilon_to_target(p.x0.clone(), p.xt.clone(), t()).unwrap(), &p.x1),
                ("velocity_to_epsilon", path.velocity_to_epsilon(p.dxt.clone(), p.xt.clone(), t()).unwrap(), &p.x0),
                ("target_to_epsilon", path.target_to_epsilon(p.x1.clone(), p.xt.clone(), t()).unwrap(), &p.x0),
            ];
            for (name, got, want) in checks {
                let d = max_diff(got, want.clone());
                assert!(d < tol, "{s:?} {name}: max difference {d}");
            }
        }
    }

    #[test]
    fn conversions_round_trip_on_random_tensors() {
        let device = Device::default();
        for s in schedulers() {
            let path = AffinePath::new(s);
            let (xt, y) = (normal([6, 5], 3, &device), normal([6, 5], 4, &device));
            let t = || times(&device);
            let v = path.target_to_velocity(y.clone(), xt.clone(), t()).unwrap();
            let back = path.velocity_to_target(v, xt.clone(), t()).unwrap();
            assert!(max_diff(back, y.clone()) < 1e-4, "{s:?} target -> velocity -> target");
            let v = path.epsilon_to_velocity(y.clone(), xt.clone(), t()).unwrap();
            let back = path.velocity_to_epsilon(v, xt.clone(), t()).unwrap();
            assert!(max_diff(back, y.clone()) < 1e-4, "{s:?} epsilon -> velocity -> epsilon");
            let x1 = path.epsilon_to_target(y.clone(), xt.clone(), t()).unwrap();
            let back = path.target_to_epsilon(x1, xt.clone(), t()).unwrap();
            assert!(max_diff(back, y) < 1e-4, "{s:?} epsilon -> target -> epsilon");
        }
    }

    #[test]
    fn condot_velocity_is_the_difference_of_endpoints() {
        let device = Device::default();
        let path = AffinePath::new(CondOtScheduler::default());
        let (x0, x1) = (normal([6, 2, 4, 3], 5, &device), normal([6, 2, 4, 3], 6, &device));
        let p = path.sample(x0.clone(), x1.clone(), times(&device)).unwrap();
        assert!(max_diff(p.dxt, x1.sub(x0)) < 1e-6);
    }

    #[test]
    fn path_interpolates_its_endpoints_per_sample() {
        let device = Device::default();
        let (x0, x1) = (normal([3, 2, 4], 7, &device), normal([3, 2, 4], 8, &device));
        let t = Tensor::from_floats([0.0, 1.0, 0.5], &device);
        let p = AffinePath::new(CondOtScheduler::default()).sample(x0.clone(), x1.clone(), t).unwrap();
        let row = |x: Tensor<3>, i: usize| x.narrow(0, i, 1);
        assert_eq!(values(row(p.xt.clone(), 0)), values(row(x0.clone(), 0)));
        assert_eq!(values(row(p.xt.clone(), 1)), values(row(x1.clone(), 1)));
        let mid = row(x0.clone(), 2).add(row(x1.clone(), 2)).mul_scalar(0.5);
        assert!(max_diff(row(p.xt, 2), mid) < 1e-6);
        // With σ_min > 0 the path ends at x1 + σ_min x0.
        let sigma_min = 0.1;
        let t1 = Tensor::from_floats([1.0], &device);
        let p = AffinePath::new(CondOtScheduler::new(sigma_min).unwrap()).sample(x0.clone(), x1.clone(), t1).unwrap();
        assert!(max_diff(p.xt, x1.add(x0.mul_scalar(sigma_min))) < 1e-6);
    }

    #[test]
    fn one_time_broadcasts_over_the_batch() {
        let device = Device::default();
        let path = AffinePath::new(CosineScheduler);
        let (x0, x1) = (normal([4, 3], 9, &device), normal([4, 3], 10, &device));
        let one = path.sample(x0.clone(), x1.clone(), Tensor::from_floats([0.3], &device)).unwrap();
        let each = path.sample(x0, x1, Tensor::from_floats([0.3; 4], &device)).unwrap();
        assert_eq!(values(one.xt), values(each.xt));
        assert_eq!(values(one.dxt), values(each.dxt));
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let device = Device::default();
        let path = AffinePath::new(CondOtScheduler::default());
        let (x0, x1) = (normal([4, 3], 1, &device), normal([4, 2], 2, &device));
        let err = path.sample(x0.clone(), x1, Tensor::from_floats([0.5], &device)).unwrap_err();
        assert!(matches!(err, PathError::Shape { what: "x1", .. }), "{err}");
        let err = path.sample(x0.clone(), x0.clone(), Tensor::from_floats([0.5, 0.5], &device)).unwrap_err();
        assert!(err.to_string().contains("t (one time per sample"), "{err}");
        let err = path.velocity_to_target(x0.clone(), normal([3, 3], 3, &device), Tensor::from_floats([0.5], &device));
        assert!(matches!(err, Err(PathError::Shape { what: "xt", .. })));
    }
}
