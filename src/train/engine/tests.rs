#![allow(clippy::unwrap_used)]

use burn::optim::GradientsParams;

use super::*;
use crate::model::{Fno, FnoConfig};

fn tiny() -> Fno {
    FnoConfig::new(2, 2)
        .with_width(4)
        .with_modes((2, 2))
        .with_layers(1)
        .with_time_embedding_dim(8)
        .with_time_frequencies(4)
        .with_projection_width(8)
        .init(&Device::default().autodiff())
        .unwrap()
}

/// A gradient for every parameter: `g = sin(θ + k)` (deterministic, nonzero).
fn grads_for(model: &Fno, k: f32) -> (Vec<f32>, GradientsParams) {
    let flat = FlatParams::of(model).unwrap();
    let g: Vec<f32> = flat.values.iter().map(|v| (v + k).sin()).collect();
    struct V<'a>(&'a [f32], &'a [Slot], usize, GradientsParams);
    impl ModuleVisitor for V<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let slot = &self.1[self.2];
            let dims: [usize; D] = param.val().dims();
            let t = Tensor::<D>::from_data(TensorData::new(self.0[slot.range()].to_vec(), dims), &Device::default());
            self.3.register(param.id, t);
            self.2 += 1;
        }
    }
    let mut v = V(&g, &flat.slots, 0, GradientsParams::new());
    model.visit(&mut v);
    let grads = v.3;
    (g, grads)
}

/// The flat AdamW takes burn's AdamW steps (with weight decay), and its moments go through
/// burn's optimiser record both ways unchanged.
#[test]
fn flat_adamw_matches_burn_adamw_and_round_trips_its_state() {
    let options = AdamWOptions { weight_decay: 0.1, ..AdamWOptions::default() };
    let mut model = tiny();
    let mut burn_opt = options.optimizer();
    let mut theta = FlatParams::of(&model).unwrap().values;
    let mut flat = FlatAdamW::new(options, theta.len());
    for step in 0..3 {
        let (g, grads) = grads_for(&model, step as f32);
        model = burn_opt.step(1e-2, model, grads);
        flat.step(1e-2, &mut theta, &g);
    }
    let burn_theta = FlatParams::of(&model).unwrap().values;
    let err = burn_theta.iter().zip(&theta).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
    assert!(err < 1e-6, "max |θ_burn − θ_flat| = {err:e}");

    // burn's moments, read through the bridge, continue exactly like the flat optimiser's.
    let engine = FnoGrad::new(&model).unwrap();
    let run = EngineRun::new(engine, &model, &burn_opt, options, None).unwrap();
    assert_eq!(run.adam.time, 3);
    let dm = run.adam.m.iter().zip(&flat.m).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
    assert!(dm < 1e-6, "first moments differ by {dm:e}");
    // Engine → burn record → engine is exact.
    let again =
        EngineRun::new(FnoGrad::new(&model).unwrap(), &model, &run.optimizer(&model).unwrap(), options, None).unwrap();
    assert_eq!((again.adam.m.clone(), again.adam.v.clone(), again.adam.time), (run.adam.m, run.adam.v, 3));
}
