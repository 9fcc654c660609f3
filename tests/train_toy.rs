//! The flow-matching proof on a 2D toy problem: an MLP trained with CondOT on "8 gaussians"
//! (FFJORD / torchcfm), sampled with RK4 through the `VelocityField` interface, must reproduce
//! the distribution: its maximum mean discrepancy (MMD) to fresh data is close to the MMD between
//! two data samples and far below that of the source or of the untrained model.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use fieldflow::bridge::{to_array, to_tensor};
use fieldflow::model::{Mlp, MlpConfig};
use fieldflow::sample::{SolveOptions, Solver, solve};
use fieldflow::train::{GaussianNoise, LrSchedule, TensorDataset, TrainConfig, Trainer, eight_gaussians};
use ndarray::{Array2, ArrayView2, Ix2};

/// Bandwidths `h` of the Gaussian kernels `exp(−‖x − y‖²/(2h²))` whose MMD² are summed: the
/// mixture's components have standard deviation 0.354 and lie 2.17 apart (neighbours) on a circle
/// of radius 2.83, so these resolve both the modes and their spread.
const BANDWIDTHS: [f64; 4] = [0.1, 0.2, 0.5, 1.0];

/// The unbiased estimate of `MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y)`, summed over
/// [`BANDWIDTHS`].
fn mmd2(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let sq = |a: ndarray::ArrayView1<f64>, b: ndarray::ArrayView1<f64>| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let mean_kernel = |a: ArrayView2<f64>, b: ArrayView2<f64>, same: bool| -> Vec<f64> {
        let mut sums = [0.0; BANDWIDTHS.len()];
        for (i, p) in a.rows().into_iter().enumerate() {
            for (j, q) in b.rows().into_iter().enumerate() {
                if same && i == j {
                    continue;
                }
                let d = sq(p, q);
                for (s, h) in sums.iter_mut().zip(BANDWIDTHS) {
                    *s += (-d / (2.0 * h * h)).exp();
                }
            }
        }
        let pairs = if same { a.nrows() * (a.nrows() - 1) } else { a.nrows() * b.nrows() };
        sums.iter().map(|s| s / pairs as f64).collect()
    };
    let (kxx, kyy, kxy) = (mean_kernel(x, x, true), mean_kernel(y, y, true), mean_kernel(x, y, false));
    (0..BANDWIDTHS.len()).map(|k| kxx[k] + kyy[k] - 2.0 * kxy[k]).sum()
}

/// Integrates `dx/dt = v(x, t)` from `t = 0` to 1 with 50 RK4 steps.
fn generate(model: &Mlp, x0: &Array2<f64>) -> Array2<f64> {
    let device = Device::default();
    let field = |x: Tensor<2>, t: f64| {
        let t = Tensor::<1>::from_data(TensorData::new(vec![t as f32], [1]), &device);
        model.forward(x, t).unwrap()
    };
    let solution =
        solve(&field, to_tensor::<2, _>(x0.view(), &device), &Solver::Rk4, &SolveOptions::uniform(50)).unwrap();
    to_array(solution.x).unwrap().into_dimensionality::<Ix2>().unwrap()
}

/// The number of samples nearest to each of the eight centres, and the fraction farther than
/// three standard deviations (1.06) from every centre (1.1% for the true distribution).
fn modes(x: ArrayView2<f64>) -> ([usize; 8], f64) {
    let (radius, std) = (2.0 * std::f64::consts::SQRT_2, 0.5 / std::f64::consts::SQRT_2);
    let mut counts = [0; 8];
    let mut outliers = 0;
    for p in x.rows() {
        let (k, d) = (0..8)
            .map(|k| {
                let a = f64::from(k) * std::f64::consts::FRAC_PI_4;
                (k as usize, ((p[0] - radius * a.cos()).powi(2) + (p[1] - radius * a.sin()).powi(2)).sqrt())
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        counts[k] += 1;
        outliers += usize::from(d > 3.0 * std);
    }
    (counts, outliers as f64 / x.nrows() as f64)
}

#[test]
fn mlp_learns_eight_gaussians() {
    let device = Device::default();
    let model_config = MlpConfig::new(2).with_hidden(64).with_layers(3).with_time_embedding_dim(16).with_seed(2);
    let config = TrainConfig {
        steps: 2500,
        batch_size: 256,
        lr: LrSchedule::cosine(3e-3, 100, 1e-4, 2500),
        clip_norm: Some(1.0),
        ema_decay: Some(0.995),
        seed: 7,
        log_every: 250,
        ..TrainConfig::default()
    };
    // 50 000 training points (about 200 epochs of 256-point batches).
    let data = TensorDataset::from_array(eight_gaussians(1, 0..50_000).view(), &device).unwrap();
    let noise = GaussianNoise { dim: 2 };
    let trainer = Trainer::<2, Mlp>::new(config, model_config.clone(), &device).unwrap().with_quiet(true);
    let start = Instant::now();
    let out = trainer.fit(&data, None, &noise).unwrap();
    let train_seconds = start.elapsed().as_secs_f64();

    // 1000 generated samples against 1000 fresh data samples (another seed than training).
    let x0 = noise.sample_array(99, 0..1000);
    let start = Instant::now();
    let generated = generate(out.sampling_model(), &x0);
    let sample_seconds = start.elapsed().as_secs_f64();
    let untrained = generate(&model_config.init(&device).unwrap(), &x0);
    let fresh = eight_gaussians(2, 0..1000);
    let fresh2 = eight_gaussians(3, 0..1000);
    let mmd_trained = mmd2(generated.view(), fresh.view());
    let mmd_raw = mmd2(generate(&out.model, &x0).view(), fresh.view());
    let mmd_data = mmd2(fresh2.view(), fresh.view());
    let mmd_source = mmd2(x0.view(), fresh.view());
    let mmd_untrained = mmd2(untrained.view(), fresh.view());
    let losses: Vec<String> = out.log.iter().map(|r| format!("{}:{:.3}", r.step, r.train_loss)).collect();
    println!(
        "8 gaussians: train {train_seconds:.1} s, sample {sample_seconds:.2} s; MMD² (sum over h = {BANDWIDTHS:?}): \
         EMA {mmd_trained:.2e}, raw {mmd_raw:.2e}, data vs data {mmd_data:.2e}, source {mmd_source:.2e}, \
         untrained {mmd_untrained:.2e}; losses {losses:?}"
    );
    let (counts, outliers) = modes(generated.view());
    let (_, data_outliers) = modes(fresh.view());
    println!("mode counts {counts:?}, outside 3σ: generated {outliers:.3}, data {data_outliers:.3}");
    // Measured (2 cores, test profile): training 5.2 s, sampling 0.5 s; MMD² EMA 2.0e-3 (raw
    // weights 2.2e-3), data vs data −1.3e-3 (the estimator's noise at n = 1000 is ~1e-3),
    // source 0.55, untrained model 0.55; mode counts 100-146, 2.9% of the samples outside 3σ
    // (data: 0.9%).
    assert!(mmd_trained < 1e-2, "MMD² of the trained model {mmd_trained}");
    assert!(mmd_trained < 0.02 * mmd_source, "{mmd_trained} vs source {mmd_source}");
    assert!(mmd_trained < 0.02 * mmd_untrained, "{mmd_trained} vs untrained {mmd_untrained}");
    // Every mode is populated in proportion (125 expected, σ ≈ 10.5) and few samples fall between.
    assert!(counts.iter().all(|&c| (90..=160).contains(&c)), "mode counts {counts:?}");
    assert!(outliers < 0.08, "{outliers} of the samples lie outside 3σ of every mode");
}
