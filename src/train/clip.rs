//! The global gradient norm and clipping by it.
//!
//! With `g` the concatenation of every parameter's gradient, `‖g‖ = (Σ_p ‖g_p‖²)^{1/2}`; clipping
//! to `c` rescales every gradient by `min(1, c / ‖g‖)`, which keeps the update's direction (burn's
//! own `GradientClipping::Norm` clips each tensor by its own norm instead, which changes it).

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::{TrainError, scalar};

/// The global norm `‖g‖` of the gradients of `module`'s parameters (parameters without a
/// gradient count as zero).
///
/// # Errors
/// [`TrainError::Readback`] if the device cannot return the value.
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Result<f64, TrainError> {
    let mut visitor = SquaredNorm { grads, total: None };
    module.visit(&mut visitor);
    match visitor.total {
        Some(total) => Ok(scalar("gradient norm", total)?.sqrt()),
        None => Ok(0.0),
    }
}

/// Computes the global gradient norm and, when `max_norm` is given and the norm exceeds it,
/// rescales every gradient by `max_norm / ‖g‖`. Returns the norm before clipping (NaN or
/// infinite gradients give a non-finite norm and are left as they are: the caller must stop).
///
/// # Errors
/// As [`global_norm`].
pub fn clip_global_norm<M: Module>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: Option<f64>,
) -> Result<f64, TrainError> {
    let norm = global_norm(module, grads)?;
    if let Some(max_norm) = max_norm
        && norm.is_finite()
        && norm > max_norm
    {
        let mut visitor = Scale { grads, factor: max_norm / norm };
        module.visit(&mut visitor);
    }
    Ok(norm)
}

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let sq = g.square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + sq,
                None => sq,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl Scale<'_> {
    fn rescale<const D: usize>(&mut self, id: ParamId) {
        if let Some(g) = self.grads.remove::<D>(id) {
            self.grads.register(id, g.mul_scalar(self.factor));
        }
    }
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.rescale::<D>(param.id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::MlpConfig;
    use burn::tensor::{Device, TensorData};

    fn grad_values<M: Module>(m: &M, grads: &GradientsParams) -> Vec<f64> {
        struct V<'a>(&'a GradientsParams, Vec<f64>);
        impl ModuleVisitor for V<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(p.id) {
                    let v = g.try_into_vec_as::<f32>().unwrap();
                    self.1.extend(v.into_iter().map(f64::from));
                }
            }
        }
        let mut v = V(grads, Vec::new());
        m.visit(&mut v);
        v.1
    }

    #[test]
    fn norm_matches_the_concatenated_gradient_and_clipping_rescales() {
        let device = Device::default().autodiff();
        let m = MlpConfig::new(2).with_hidden(8).with_layers(2).with_time_embedding_dim(4).init(&device).unwrap();
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.5_f32, -1.0, 2.0, 0.25], [2, 2]), &device);
        let t = Tensor::<1>::from_data(TensorData::new(vec![0.2_f32, 0.7], [2]), &device);
        let loss = m.forward(x, t).unwrap().powi_scalar(2).sum().mul_scalar(10.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &m);
        let flat = grad_values(&m, &grads);
        let want = flat.iter().map(|g| g * g).sum::<f64>().sqrt();
        let norm = global_norm(&m, &grads).unwrap();
        assert!((norm - want).abs() <= 1e-5 * want, "{norm} vs {want}");

        // Above the threshold: every gradient scaled by c/‖g‖, the new norm is c.
        let c = 0.25 * norm;
        let before = clip_global_norm(&m, &mut grads, Some(c)).unwrap();
        assert!((before - norm).abs() <= 1e-6 * norm);
        let after = grad_values(&m, &grads);
        for (a, b) in after.iter().zip(&flat) {
            assert!((a - 0.25 * b).abs() <= 1e-6 * (1e-3 + b.abs()), "{a} vs {b}");
        }
        assert!((global_norm(&m, &grads).unwrap() - c).abs() <= 1e-5 * c);
        // Below the threshold: unchanged.
        clip_global_norm(&m, &mut grads, Some(10.0 * c)).unwrap();
        assert_eq!(grad_values(&m, &grads), after);
    }
}
