//! ConFIG, Conflict-Free Inverse Gradients (Liu et al. 2024, code tum-pbs/ConFIG), for two losses:
//! the update PBFM (Baldan et al. 2025) uses to combine the flow-matching and residual gradients.
//!
//! # The two-loss update
//!
//! With unit vectors `u_i = g_i / ‖g_i‖`, the direction `g_v` is the minimum-norm solution of
//! `[u1ᵀ; u2ᵀ] g_v = [1; 1]`, i.e. `g_v = Uᵀ (U Uᵀ)⁺ 1` with `U = [u1ᵀ; u2ᵀ]`. Since the Gram
//! matrix is `[[1, c], [c, 1]]` with `c = u1·u2`, for `c > −1` this is
//! `g_v = (u1 + u2)/(1 + c)`: the bisector of the two gradients. With `g_u = g_v / ‖g_v‖` the update is
//!
//! ```text
//! g = (g1·g_u + g2·g_u) g_u
//! ```
//!
//! (ConFIG's default "projection length"). By construction `g·u1 = g·u2 ≥ 0`: the update
//! decreases neither loss to first order, and lowers both equally in their normalised directions.
//! When `g1 ∥ g2` it equals `g1 + g2`.
//!
//! # Degenerate cases
//!
//! - `g1 = −λ g2` (`c = −1`): `[1, 1]` lies in the null space of the Gram matrix, the
//!   pseudo-inverse gives `g_v = 0` and there is no conflict-free direction:
//!   [`ConfigError::Opposite`] (the caller may skip the step, or fall back to `g1`).
//! - A zero gradient has no direction: [`ConfigError::ZeroGradient`] (fall back to the other
//!   gradient).
//!
//! [`confg_update`] works on flat `f64` vectors; [`confg_gradients`] applies it to the gradients
//! of a burn module (all parameters concatenated in the module's visiting order).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use thiserror::Error;

/// Why no conflict-free update exists (or the inputs are unusable).
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    /// The gradients have different lengths.
    #[error("gradient lengths differ: g1 has {g1}, g2 has {g2}")]
    Length {
        /// Length of `g1`.
        g1: usize,
        /// Length of `g2`.
        g2: usize,
    },
    /// One gradient is zero (or holds only zeros): it has no direction.
    #[error("gradient `{which}` is zero; it has no direction")]
    ZeroGradient {
        /// `g1` or `g2`.
        which: &'static str,
    },
    /// A gradient holds NaN or infinite values.
    #[error("gradient `{which}` holds a non-finite value")]
    NonFinite {
        /// `g1` or `g2`.
        which: &'static str,
    },
    /// The gradients point in opposite directions (`cos = {cos}`): no direction decreases both.
    #[error("gradients are opposite (cos = {cos}); no conflict-free direction exists")]
    Opposite {
        /// The cosine of the angle between them.
        cos: f64,
    },
    /// A gradient tensor could not be read back from its device.
    #[error("could not read a gradient back from the device: {0}")]
    Readback(String),
}

/// `1 + cos` below this counts as opposite gradients.
const OPPOSITE_TOLERANCE: f64 = 1e-10;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit(g: &[f64], which: &'static str) -> Result<Vec<f64>, ConfigError> {
    if g.iter().any(|v| !v.is_finite()) {
        return Err(ConfigError::NonFinite { which });
    }
    let norm = dot(g, g).sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(ConfigError::ZeroGradient { which });
    }
    Ok(g.iter().map(|v| v / norm).collect())
}

/// The ConFIG update of two gradients (see the module docs).
///
/// # Errors
/// [`ConfigError::Length`], [`ConfigError::NonFinite`], [`ConfigError::ZeroGradient`],
/// [`ConfigError::Opposite`].
pub fn confg_update(g1: &[f64], g2: &[f64]) -> Result<Vec<f64>, ConfigError> {
    if g1.len() != g2.len() {
        return Err(ConfigError::Length { g1: g1.len(), g2: g2.len() });
    }
    let u1 = unit(g1, "g1")?;
    let u2 = unit(g2, "g2")?;
    let cos = dot(&u1, &u2).clamp(-1.0, 1.0);
    if 1.0 + cos <= OPPOSITE_TOLERANCE {
        return Err(ConfigError::Opposite { cos });
    }
    // Minimum-norm solution of [u1ᵀ; u2ᵀ] g_v = 1: g_v = (u1 + u2)/(1 + c); only its direction
    // matters.
    let gv: Vec<f64> = u1.iter().zip(&u2).map(|(a, b)| a + b).collect();
    let norm = dot(&gv, &gv).sqrt();
    if norm <= OPPOSITE_TOLERANCE {
        return Err(ConfigError::Opposite { cos });
    }
    let gu: Vec<f64> = gv.iter().map(|v| v / norm).collect();
    let length = dot(g1, &gu) + dot(g2, &gu);
    Ok(gu.into_iter().map(|v| v * length).collect())
}

/// The layout of one parameter in the flattened gradient.
struct Slot {
    id: ParamId,
    shape: Vec<usize>,
    device: Device,
}

/// Flattens the gradients of `grads1` and `grads2` (in `module`'s visiting order; a parameter
/// missing from one set counts as zeros there).
struct Flatten<'a> {
    grads1: &'a GradientsParams,
    grads2: &'a GradientsParams,
    g1: Vec<f64>,
    g2: Vec<f64>,
    slots: Vec<Slot>,
    error: Option<ConfigError>,
}

fn read<const D: usize>(g: Tensor<D>) -> Result<Vec<f64>, ConfigError> {
    g.try_into_vec_as::<f32>()
        .map(|v| v.into_iter().map(f64::from).collect())
        .map_err(|e| ConfigError::Readback(format!("{e:?}")))
}

impl ModuleVisitor for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.error.is_some() {
            return;
        }
        let (a, b) = (self.grads1.get::<D>(param.id), self.grads2.get::<D>(param.id));
        let template = match (&a, &b) {
            (Some(t), _) | (None, Some(t)) => t.clone(),
            (None, None) => return,
        };
        let n = template.shape().num_elements();
        let mut take = |g: Option<Tensor<D>>, out: &mut Vec<f64>| match g {
            Some(g) => match read(g) {
                Ok(v) => out.extend(v),
                Err(e) => self.error = Some(e),
            },
            None => out.extend(std::iter::repeat_n(0.0, n)),
        };
        let (mut g1, mut g2) = (std::mem::take(&mut self.g1), std::mem::take(&mut self.g2));
        take(a, &mut g1);
        take(b, &mut g2);
        self.g1 = g1;
        self.g2 = g2;
        self.slots.push(Slot { id: param.id, shape: template.dims().to_vec(), device: template.device() });
    }
}

/// The ConFIG combination of two gradient sets of `module` (e.g. of the flow-matching loss and of
/// the residual loss, each from its own `backward`), as a new [`GradientsParams`] holding every
/// parameter that has a gradient in either set.
///
/// # Errors
/// As [`confg_update`] on the concatenated gradients; [`ConfigError::Readback`] if a gradient
/// cannot be read.
pub fn confg_gradients<M: Module>(
    module: &M,
    grads1: &GradientsParams,
    grads2: &GradientsParams,
) -> Result<GradientsParams, ConfigError> {
    let mut flat = Flatten { grads1, grads2, g1: Vec::new(), g2: Vec::new(), slots: Vec::new(), error: None };
    module.visit(&mut flat);
    if let Some(e) = flat.error {
        return Err(e);
    }
    let g = confg_update(&flat.g1, &flat.g2)?;
    let mut out = GradientsParams::new();
    let mut offset = 0;
    for slot in flat.slots {
        let n: usize = slot.shape.iter().product();
        let values: Vec<f32> = g[offset..offset + n].iter().map(|&v| v as f32).collect();
        offset += n;
        let data = TensorData::new(values, slot.shape.clone());
        match slot.shape.len() {
            1 => out.register(slot.id, Tensor::<1>::from_data(data, &slot.device)),
            2 => out.register(slot.id, Tensor::<2>::from_data(data, &slot.device)),
            3 => out.register(slot.id, Tensor::<3>::from_data(data, &slot.device)),
            4 => out.register(slot.id, Tensor::<4>::from_data(data, &slot.device)),
            5 => out.register(slot.id, Tensor::<5>::from_data(data, &slot.device)),
            6 => out.register(slot.id, Tensor::<6>::from_data(data, &slot.device)),
            r => return Err(ConfigError::Readback(format!("parameters of rank {r} are not supported"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::MlpConfig;
    use rand::RngExt;
    use rand_distr::StandardNormal;

    fn norm(a: &[f64]) -> f64 {
        dot(a, a).sqrt()
    }

    fn normal(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = fieldflow_pde::rng::stream(seed, 0);
        (0..n).map(|_| rng.sample(StandardNormal)).collect()
    }

    /// Checks `g·u1 = g·u2 ≥ 0` and returns the common projection.
    fn check_conflict_free(g1: &[f64], g2: &[f64], g: &[f64]) -> f64 {
        let (p1, p2) = (dot(g, g1) / norm(g1), dot(g, g2) / norm(g2));
        assert!((p1 - p2).abs() <= 1e-12 * norm(g), "projections differ: {p1} vs {p2}");
        assert!(p1 >= 0.0 && dot(g, g1) >= 0.0 && dot(g, g2) >= 0.0, "{p1}");
        p1
    }

    #[test]
    fn update_is_conflict_free_with_equal_projections() {
        for seed in 0..20 {
            let g1 = normal(64, 100 + seed);
            // Mix toward −g1 to get strongly conflicting pairs as well.
            let w = normal(64, 200 + seed);
            let lambda = seed as f64 / 10.0;
            let g2: Vec<f64> = w.iter().zip(&g1).map(|(w, g)| 0.3 * w - lambda * g).collect();
            let g = confg_update(&g1, &g2).unwrap();
            let p = check_conflict_free(&g1, &g2, &g);
            assert!(p > 0.0);
            // The direction is the bisector of u1 and u2, the length the summed projections.
            let (n1, n2) = (norm(&g1), norm(&g2));
            let bis: Vec<f64> = g1.iter().zip(&g2).map(|(a, b)| a / n1 + b / n2).collect();
            let nb = norm(&bis);
            let len = (dot(&g1, &bis) + dot(&g2, &bis)) / nb;
            for (gi, bi) in g.iter().zip(&bis) {
                assert!((gi - len * bi / nb).abs() <= 1e-12 * norm(&g));
            }
        }
    }

    #[test]
    fn conflicting_pair_gets_a_direction_that_decreases_both() {
        let (g1, g2) = ([3.0, 0.0], [-0.9, 0.5]);
        assert!(dot(&g1, &g2) < 0.0);
        // The plain sum conflicts with g2 here; ConFIG does not.
        let sum = [g1[0] + g2[0], g1[1] + g2[1]];
        assert!(dot(&sum, &g2) < 0.0);
        let g = confg_update(&g1, &g2).unwrap();
        check_conflict_free(&g1, &g2, &g);
        assert!(dot(&g, &g1) > 0.0 && dot(&g, &g2) > 0.0);
    }

    #[test]
    fn parallel_gradients_add_and_orthogonal_ones_bisect() {
        let g1 = normal(10, 1);
        let g2: Vec<f64> = g1.iter().map(|v| 3.0 * v).collect();
        let g = confg_update(&g1, &g2).unwrap();
        for (gi, g1i) in g.iter().zip(&g1) {
            assert!((gi - 4.0 * g1i).abs() <= 1e-12 * norm(&g));
        }
        // Orthogonal: g_u = (1, 1)/√2, length (2 + 1)/√2, g = (1.5, 1.5).
        let g = confg_update(&[2.0, 0.0], &[0.0, 1.0]).unwrap();
        assert!((g[0] - 1.5).abs() < 1e-14 && (g[1] - 1.5).abs() < 1e-14, "{g:?}");
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        let g1 = normal(8, 3);
        let opposite: Vec<f64> = g1.iter().map(|v| -2.0 * v).collect();
        assert!(matches!(confg_update(&g1, &opposite), Err(ConfigError::Opposite { cos }) if cos < -0.999));
        assert_eq!(confg_update(&g1, &[0.0; 8]), Err(ConfigError::ZeroGradient { which: "g2" }));
        assert_eq!(confg_update(&[0.0; 8], &g1), Err(ConfigError::ZeroGradient { which: "g1" }));
        assert_eq!(confg_update(&g1, &[1.0; 7]), Err(ConfigError::Length { g1: 8, g2: 7 }));
        let mut nan = g1.clone();
        nan[2] = f64::NAN;
        assert_eq!(confg_update(&nan, &g1), Err(ConfigError::NonFinite { which: "g1" }));
    }

    fn flat<M: Module>(m: &M, grads: &GradientsParams) -> Vec<f64> {
        struct V<'a>(&'a GradientsParams, Vec<f64>);
        impl ModuleVisitor for V<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(p.id) {
                    self.1.extend(g.try_into_vec_as::<f32>().unwrap().into_iter().map(f64::from));
                }
            }
        }
        let mut v = V(grads, Vec::new());
        m.visit(&mut v);
        v.1
    }

    #[test]
    fn module_gradients_are_combined_like_the_flat_vectors() {
        let device = Device::default().autodiff();
        let m = MlpConfig::new(2).with_hidden(8).with_layers(2).with_time_embedding_dim(4).init(&device).unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5_f32, -1.0, 2.0, 0.25], [2, 2]), &device);
        let t = Tensor::<1>::from_data(TensorData::new(vec![0.2_f32, 0.7], [2]), &device);
        let loss1 = m.forward(x.clone(), t.clone()).unwrap().powi_scalar(2).sum();
        let grads1 = GradientsParams::from_grads(loss1.backward(), &m);
        let loss2 = (m.forward(x, t).unwrap() - 1.0).powi_scalar(2).sum().mul_scalar(3.0);
        let grads2 = GradientsParams::from_grads(loss2.backward(), &m);
        let (g1, g2) = (flat(&m, &grads1), flat(&m, &grads2));
        let combined = confg_gradients(&m, &grads1, &grads2).unwrap();
        let got = flat(&m, &combined);
        let want = confg_update(&g1, &g2).unwrap();
        assert_eq!(got.len(), want.len());
        assert_eq!(got.len(), m.num_params());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-6 * norm(&want), "{a} vs {b}");
        }
        check_conflict_free(&g1, &g2, &want);
    }
}
