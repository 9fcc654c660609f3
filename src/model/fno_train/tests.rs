#![allow(clippy::unwrap_used)]

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Gradients, Tensor, TensorData};

use super::*;
use crate::model::test_util::normal_array;
use crate::model::{FnoConfig, GridEncoding};

/// Standard-normal `f32` values from stream `(seed, index)`.
fn normal(n: usize, seed: u64, index: u64) -> Vec<f32> {
    normal_array(&[n], seed, index).iter().map(|&v| v as f32).collect()
}

fn tensor<const D: usize>(v: &[f32], shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

/// The gradient of every parameter in visiting order (zeros where burn has none).
fn burn_grads(fno: &Fno, grads: &Gradients) -> Vec<Vec<f32>> {
    struct V<'a>(&'a Gradients, Vec<Vec<f32>>);
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.lazy_shape().num_elements();
            let g = param.val().grad(self.0).map(|g| g.try_into_vec_as::<f32>().unwrap());
            self.1.push(g.unwrap_or_else(|| vec![0.0; n]));
        }
    }
    let mut v = V(grads, Vec::new());
    fno.visit(&mut v);
    v.1
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let num: f64 = a.iter().zip(b).map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    (num / den).sqrt()
}

struct Case {
    config: FnoConfig,
    b: usize,
    h: usize,
    w: usize,
}

fn cases() -> Vec<Case> {
    let small = |w: usize| {
        FnoConfig::new(2, 2)
            .with_width(w)
            .with_modes((4, 3))
            .with_layers(3)
            .with_time_embedding_dim(16)
            .with_time_frequencies(8)
            .with_projection_width(12)
    };
    vec![
        Case { config: small(8).with_seed(1), b: 3, h: 16, w: 16 },
        Case { config: small(6).with_seed(2).with_grid_encoding(GridEncoding::Linear), b: 2, h: 32, w: 16 },
        Case { config: small(8).with_seed(3).with_cond_channels(1).with_scalar_params(2), b: 4, h: 12, w: 20 },
        // 12 × 12 modes on a 16² grid: the unresolved modes are zero rows of the DFT matrices.
        Case {
            config: FnoConfig::new(2, 2).with_width(4).with_layers(2).with_projection_width(8).with_with_grid(false),
            b: 2,
            h: 16,
            w: 16,
        },
    ]
}

struct Inputs {
    x: Vec<f32>,
    t: Vec<f32>,
    cond: Option<Vec<f32>>,
    params: Option<Vec<f32>>,
    target: Vec<f32>,
}

fn inputs(case: &Case, seed: u64) -> Inputs {
    let (b, hw) = (case.b, case.h * case.w);
    let nc = case.config.cond_channels;
    let np = case.config.scalar_params;
    Inputs {
        x: normal(b * 2 * hw, seed, 0),
        t: (0..b).map(|i| (i as f32 + 0.37) / b as f32).collect(),
        cond: (nc > 0).then(|| normal(b * nc * hw, seed, 1)),
        params: (np > 0).then(|| normal(b * np, seed, 2)),
        target: normal(b * 2 * hw, seed, 3),
    }
}

fn batch<'a>(case: &Case, i: &'a Inputs) -> GradBatch<'a> {
    GradBatch {
        shape: (case.b, case.h, case.w),
        x: &i.x,
        t: &i.t,
        cond: i.cond.as_deref(),
        params: i.params.as_deref(),
        target: &i.target,
    }
}

#[test]
fn gradients_equal_burn_autodiff_per_parameter_tensor() {
    let device = Device::default().autodiff();
    for (n, case) in cases().iter().enumerate() {
        let fno = case.config.init(&device).unwrap();
        let inp = inputs(case, 10 + n as u64);
        let (b, h, w) = (case.b, case.h, case.w);
        let nc = case.config.cond_channels;
        let cond = inp.cond.as_ref().map(|c| tensor(c, [b, nc, h, w], &device));
        let params = inp.params.as_ref().map(|p| tensor(p, [b, case.config.scalar_params], &device));
        let out = fno.forward(tensor(&inp.x, [b, 2, h, w], &device), tensor(&inp.t, [b], &device), cond, params);
        let loss = (out.unwrap() - tensor(&inp.target, [b, 2, h, w], &device)).square().mean();
        let want_loss = f64::from(loss.clone().try_into_vec_as::<f32>().unwrap()[0]);
        let want = burn_grads(&fno, &loss.backward());

        let engine = FnoGrad::new(&fno).unwrap();
        let theta = FlatParams::of(&fno).unwrap().values;
        let mut grad = vec![0.0; engine.num_params()];
        let got_loss = engine.loss_and_grad(&theta, &batch(case, &inp), &mut grad).unwrap();
        assert!((got_loss - want_loss).abs() < 1e-5 * want_loss, "case {n}: loss {got_loss} vs {want_loss}");
        assert_eq!(want.len(), engine.slots().len());
        let mut worst = 0.0_f64;
        for (slot, g) in engine.slots().iter().zip(&want) {
            let e = rel(&grad[slot.range()], g);
            worst = worst.max(e);
            assert!(e <= 1e-4, "case {n}: parameter {slot:?}: relative gradient error {e:e}");
        }
        println!("case {n} ({h}×{w}): loss {got_loss:.6}, worst relative gradient error {worst:.2e}");
    }
}

#[test]
fn shard_gradients_sum_to_the_batch_gradient() {
    let device = Device::default();
    let case = &cases()[0];
    let fno = case.config.init(&device).unwrap();
    let engine = FnoGrad::new(&fno).unwrap();
    let theta = FlatParams::of(&fno).unwrap().values;
    let inp = inputs(case, 4);
    let one = engine.shard_grads(&theta, &batch(case, &inp), 1).unwrap();
    let three = engine.shard_grads(&theta, &batch(case, &inp), 3).unwrap();
    assert_eq!((one.len(), three.len()), (1, 3));
    let mut sum = vec![0.0_f32; engine.num_params()];
    for s in &three {
        sum.iter_mut().zip(&s.grad).for_each(|(a, b)| *a += b);
    }
    assert!(rel(&sum, &one[0].grad) < 1e-6, "{:e}", rel(&sum, &one[0].grad));
    let loss3: f64 = three.iter().map(|s| s.loss_sum).sum();
    assert!((loss3 - one[0].loss_sum).abs() < 1e-9 * one[0].loss_sum);
}

#[test]
fn input_vjp_equals_burn_autodiff() {
    let device = Device::default().autodiff();
    for case in &cases()[..3] {
        let fno = case.config.init(&device).unwrap();
        let inp = inputs(case, 7);
        let (b, h, w) = (case.b, case.h, case.w);
        let nc = case.config.cond_channels;
        let x = tensor(&inp.x, [b, 2, h, w], &device).require_grad();
        let cond = inp.cond.as_ref().map(|c| tensor(c, [b, nc, h, w], &device));
        let params = inp.params.as_ref().map(|p| tensor(p, [b, case.config.scalar_params], &device));
        let out = fno.forward(x.clone(), tensor(&inp.t, [b], &device), cond, params).unwrap();
        let grads = out.mul(tensor(&inp.target, [b, 2, h, w], &device)).sum().backward();
        let want = x.grad(&grads).unwrap().try_into_vec_as::<f32>().unwrap();
        let engine = FnoGrad::new(&fno).unwrap();
        let theta = FlatParams::of(&fno).unwrap().values;
        let got = engine.input_vjp(&theta, &batch(case, &inp)).unwrap();
        let e = rel(&got, &want);
        assert!(e <= 1e-4, "{h}×{w}: relative VJP error {e:e}");
    }
}

#[test]
fn leray_networks_and_bad_inputs_are_refused() {
    let device = Device::default();
    let leray = FnoConfig::new(2, 2).with_width(4).with_modes((2, 2)).with_leray_domain(Some((1.0, 1.0)));
    assert!(matches!(FnoGrad::new(&leray.init(&device).unwrap()), Err(ModelError::InvalidConfig { .. })));
    let case = &cases()[0];
    let fno = case.config.init(&device).unwrap();
    let engine = FnoGrad::new(&fno).unwrap();
    let theta = FlatParams::of(&fno).unwrap().values;
    let inp = inputs(case, 1);
    let mut grad = vec![0.0; engine.num_params()];
    let short = GradBatch { target: &inp.target[1..], ..batch(case, &inp) };
    assert!(engine.loss_and_grad(&theta, &short, &mut grad).is_err());
    assert!(engine.loss_and_grad(&theta[1..], &batch(case, &inp), &mut grad).is_err());
}
