#![allow(clippy::unwrap_used)]

use super::*;
use crate::grid::signed_index;
use crate::operators::{divergence, laplacian, velocity_from_streamfunction, vorticity};
use ndarray::ArrayView3;
use std::f64::consts::PI;

fn fno(alpha: f64, tau: f64, sigma: Option<f64>) -> Covariance {
    Covariance::Fno(GrfParams { alpha, tau, sigma, mean_zero: true })
}

fn matern(variance: f64, length_scale: f64, nu: f64, normalisation: MaternNormalisation) -> Covariance {
    Covariance::Matern(MaternParams { variance, length_scale, nu, mean_zero: true, normalisation })
}

fn max_abs<'a>(a: impl IntoIterator<Item = &'a f64>) -> f64 {
    a.into_iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

/// The sample power `|f̂(k)|²` averaged over `samples` samples, from the forward transform of
/// the sampled fields (end to end).
fn mean_power(s: &GrfSampler, seed: u64, samples: u64) -> Array2<f64> {
    let g = s.grid();
    let mut acc = Array2::<f64>::zeros(g.spectral_shape());
    for f in s.sample_batch(seed, 0..samples).unwrap().outer_iter() {
        let spec = g.fft(f.index_axis(Axis(0), 0)).unwrap();
        acc.zip_mut_with(&spec, |a, c| *a += c.norm_sqr());
    }
    acc / samples as f64
}

/// A log-log fit of the shell-averaged power against `|k|` over integer shells `lo..=hi`, using
/// the independent interior columns `0 < mx < nx/2`. Returns the slope and its standard error,
/// taking each shell's log-mean to have variance `1 / (modes · samples)` (each `|ξ|²` is Exp(1)).
fn shell_slope(g: &Grid2d, power: &Array2<f64>, lo: usize, hi: usize, samples: f64) -> (f64, f64) {
    let mut shells = vec![(0.0, 0.0, 0.0); hi + 1]; // (Σ ln|k|, Σ P, count)
    for ((i, j), p) in power.indexed_iter() {
        if j == 0 || j == g.nx() / 2 {
            continue;
        }
        let m = (j as f64).hypot(signed_index(i, g.ny()) as f64).round() as usize;
        if (lo..=hi).contains(&m) {
            let k = g.kx()[j].hypot(g.ky()[i]);
            shells[m].0 += k.ln();
            shells[m].1 += p;
            shells[m].2 += 1.0;
        }
    }
    let pts: Vec<(f64, f64, f64)> =
        shells[lo..].iter().map(|&(lk, p, c)| (lk / c, (p / c).ln(), 1.0 / (c * samples))).collect();
    let n = pts.len() as f64;
    let (xm, ym) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - xm).powi(2)).sum();
    let slope = pts.iter().map(|p| (p.0 - xm) * (p.1 - ym)).sum::<f64>() / sxx;
    let var: f64 = pts.iter().map(|p| (p.0 - xm).powi(2) * p.2).sum::<f64>() / (sxx * sxx);
    (slope, var.sqrt())
}

/// Fitted slope of the sampled spectrum, of the exact expected spectrum (same binning: its
/// deviation from the power law is the deterministic bias), and the standard error.
fn slopes(cov: &Covariance, samples: u64) -> (f64, f64, f64) {
    let g = Grid2d::square(128, 1.0).unwrap();
    let s = GrfSampler::new(&g, cov).unwrap();
    let (lo, hi) = (8, 48);
    let (fit, se) = shell_slope(&g, &mean_power(&s, 11, samples), lo, hi, samples as f64);
    let exact = s.mode_variances().mapv(|v| v * (128.0 * 128.0_f64).powi(2));
    let (model, _) = shell_slope(&g, &exact, lo, hi, 1.0);
    (fit, model, se)
}

#[test]
fn same_seed_and_index_reproduce_and_batches_match() {
    let g = Grid2d::new(48, 32, 2.0, 1.0).unwrap();
    for cov in [Covariance::default(), Covariance::Matern(MaternParams::default())] {
        let s = GrfSampler::new(&g, &cov).unwrap();
        let a = s.sample(5, 3).unwrap();
        assert_eq!(a, sample(&g, &cov, 5, 3).unwrap());
        assert_ne!(a, s.sample(5, 4).unwrap());
        assert_ne!(a, s.sample(6, 3).unwrap());
        // A shard starting at 2: each entry is the per-index sample, bit for bit.
        let batch = sample_batch(&g, &cov, 5, 2..7).unwrap();
        assert_eq!(batch.dim(), (5, 1, 32, 48));
        for (b, f) in batch.outer_iter().enumerate() {
            assert_eq!(f.index_axis(Axis(0), 0), s.sample(5, 2 + b as u64).unwrap());
        }
        let scale = VelocityScale::ExpectedRms(0.7);
        let vb = sample_velocity_batch(&g, &cov, scale, 5, 3..6).unwrap();
        assert_eq!(vb.dim(), (3, 2, 32, 48));
        for (b, uv) in vb.outer_iter().enumerate() {
            assert_eq!(uv, sample_velocity(&g, &cov, scale, 5, 3 + b as u64).unwrap());
        }
        assert_eq!(s.sample_batch(5, 4..4).unwrap().dim().0, 0);
    }
}

#[test]
fn fno_mode_variances_match_the_formula_and_fno_default() {
    let g = Grid2d::square(32, 1.0).unwrap();
    let p = GrfParams::default();
    assert_eq!(p.sigma(), 7.0_f64.powf(1.5));
    let v = Covariance::Fno(p).mode_variances(&g).unwrap();
    assert_eq!(v[[0, 0]], 0.0);
    // Mode m = (3, −2) on the unit square: σ² (4π²|m|² + τ²)^(−α).
    let want = 7.0_f64.powi(3) * (4.0 * PI * PI * 13.0 + 49.0).powf(-2.5);
    assert!((v[[32 - 2, 3]] - want).abs() < 1e-14 * want);
    // On [0, 2π)² the physical |k|² is the integer one, and v carries 1/|D|.
    let g2 = Grid2d::square(32, 2.0 * PI).unwrap();
    let v2 = fno(2.0, 3.0, Some(1.5)).mode_variances(&g2).unwrap();
    let want2 = 1.5 * 1.5 * (13.0_f64 + 9.0).powf(-2.0) / (4.0 * PI * PI);
    assert!((v2[[32 - 2, 3]] - want2).abs() < 1e-14 * want2);
}

#[test]
fn fno_spectrum_slope_is_minus_two_alpha() {
    // τ = 1 ≪ |k| ∈ [2π·8, 2π·48]: a pure power law |k|^(−2α) up to the shell binning.
    let alpha = 2.5;
    let (fit, model, se) = slopes(&fno(alpha, 1.0, Some(1.0)), 50);
    eprintln!("FNO slope: fitted {fit:.4}, exact-spectrum {model:.4}, standard error {se:.4}");
    assert!((model + 2.0 * alpha).abs() < 0.01, "binning bias {}", model + 2.0 * alpha);
    assert!((fit - model).abs() < 4.0 * se, "fitted {fit} vs {model} ± {se}");
    assert!((fit + 2.0 * alpha).abs() < 4.0 * se + 0.01);
}

#[test]
fn matern_spectrum_slope_is_minus_two_nu_plus_one() {
    // ℓ = 0.5: 2ν/ℓ² = 16 ≪ |k|² in the band.
    let nu = 2.0;
    let (fit, model, se) = slopes(&matern(1.0, 0.5, nu, MaternNormalisation::Grid), 50);
    eprintln!("Matérn slope: fitted {fit:.4}, exact-spectrum {model:.4}, standard error {se:.4}");
    assert!((model + 2.0 * (nu + 1.0)).abs() < 0.01, "binning bias {}", model + 2.0 * (nu + 1.0));
    assert!((fit - model).abs() < 4.0 * se, "fitted {fit} vs {model} ± {se}");
}

#[test]
fn empirical_mode_variances_match_the_request() {
    let g = Grid2d::square(64, 1.0).unwrap();
    let samples = 100;
    let s = GrfSampler::new(&g, &Covariance::default()).unwrap();
    let n2 = (64.0 * 64.0_f64).powi(2);
    let mut acc = [(0.0, 0.0); 4]; // (Σ ratio, count): |f̂|², Re², Im² (interior), Hermitian column
    let mut nyquist = (0.0, 0.0);
    let mut max_im_self_conj = 0.0_f64;
    for f in s.sample_batch(2, 0..samples).unwrap().outer_iter() {
        let spec = g.fft(f.index_axis(Axis(0), 0)).unwrap();
        assert!(spec[[0, 0]].norm() < 1e-10 * n2.sqrt(), "mean mode must vanish");
        for ((i, j), c) in spec.indexed_iter() {
            let var = n2 * s.mode_variances()[[i, j]];
            let my = signed_index(i, 64);
            let r = (1..=16).contains(&j.max(my.unsigned_abs()));
            if j > 0 && j < 32 && r {
                for (a, x) in acc.iter_mut().zip([c.norm_sqr(), 2.0 * c.re * c.re, 2.0 * c.im * c.im]) {
                    *a = (a.0 + x / var, a.1 + 1.0);
                }
            } else if j == 0 && my > 0 && r {
                acc[3] = (acc[3].0 + c.norm_sqr() / var, acc[3].1 + 1.0);
            } else if matches!((i, j), (32, 0) | (0, 32) | (32, 32)) {
                // The self-conjugate modes other than the mean.
                nyquist = (nyquist.0 + c.re * c.re / var, nyquist.1 + 1.0);
                max_im_self_conj = max_im_self_conj.max(c.im.abs() / var.sqrt());
            }
        }
    }
    // Ratios: |ξ|² ~ Exp(1) (variance 1); 2 Re², 2 Im² and real self-conjugate modes ~ χ²₁ (variance 2).
    for (name, (sum, n), var) in [
        ("|f̂|²", acc[0], 1.0),
        ("Re", acc[1], 2.0),
        ("Im", acc[2], 2.0),
        ("kx = 0", acc[3], 1.0),
        ("Nyquist", nyquist, 2.0),
    ] {
        let (mean, se) = (sum / n, (var / n).sqrt());
        eprintln!("{name}: mean ratio {mean:.4} over {n} draws, standard error {se:.4}");
        assert!((mean - 1.0).abs() < 3.0 * se, "{name}: {mean} ± {se}");
    }
    assert!(max_im_self_conj < 1e-12);
}

#[test]
fn kept_mean_mode_has_its_variance() {
    let g = Grid2d::square(16, 1.0).unwrap();
    let cov = Covariance::Fno(GrfParams { mean_zero: false, ..GrfParams::default() });
    let s = GrfSampler::new(&g, &cov).unwrap();
    // σ² τ^(−2α) = τ^(2α − 2 − 2α) = 1/49.
    assert!((s.mode_variances()[[0, 0]] - 1.0 / 49.0).abs() < 1e-15);
    let n = 400;
    let batch = s.sample_batch(2, 0..n).unwrap();
    let m2 = batch.outer_iter().map(|f| f.mean().unwrap().powi(2)).sum::<f64>() / n as f64;
    let se = (2.0 / n as f64).sqrt() / 49.0;
    eprintln!("mean-mode variance {m2:.5} vs {:.5} ± {se:.5}", 1.0 / 49.0);
    assert!((m2 - 1.0 / 49.0).abs() < 3.0 * se);
}

#[test]
fn matern_pointwise_variance_is_sigma_squared() {
    let g = Grid2d::square(64, 1.0).unwrap();
    let s = GrfSampler::new(&g, &matern(2.0, 0.1, 1.5, MaternNormalisation::Grid)).unwrap();
    assert!((s.pointwise_variance() - 2.0).abs() < 1e-12);
    let n = 64;
    let batch = s.sample_batch(3, 0..n).unwrap();
    let est = batch.iter().map(|x| x * x).sum::<f64>() / batch.len() as f64;
    // Var of one sample's ⟨f²⟩ = 2 Σ_k v(k)² over all grid modes (Parseval, independent modes).
    let v2 = s.mode_variances().mapv(|v| v * v);
    let se = (2.0 * covariance::full_plane_sum(&g, &v2) / n as f64).sqrt();
    eprintln!("Matérn pointwise variance {est:.4} vs 2 ± {se:.4}");
    assert!((est - 2.0).abs() < 3.0 * se);
    // The continuum normalisation is σ² to the accuracy of the periodised Riemann sum (the tail
    // beyond the grid's modes is ~ (1 + ℓ²k_N²/(2ν))^(−ν) ≈ 6e-4 here) once the mean mode is kept;
    // zeroing it removes exactly its share S(0)/|D| = 2πℓ²σ².
    let mut p = MaternParams { variance: 2.0, length_scale: 0.1, nu: 1.5, mean_zero: false, ..Default::default() };
    p.normalisation = MaternNormalisation::Continuum;
    let with_mean = GrfSampler::new(&g, &Covariance::Matern(p)).unwrap().pointwise_variance();
    p.mean_zero = true;
    let without_mean = GrfSampler::new(&g, &Covariance::Matern(p)).unwrap().pointwise_variance();
    eprintln!("continuum-normalised pointwise variance / σ² = {:.6}", with_mean / 2.0);
    assert!((with_mean / 2.0 - 1.0).abs() < 1e-3);
    assert!((with_mean - without_mean - 2.0 * 2.0 * PI * 0.01).abs() < 1e-12);
}

#[test]
fn velocity_is_divergence_free_with_vorticity_minus_laplacian_psi() {
    for g in [Grid2d::square(64, 1.0).unwrap(), Grid2d::new(48, 80, 2.0 * PI, 3.0).unwrap()] {
        for cov in [Covariance::default(), matern(1.0, 0.2, 0.5, MaternNormalisation::Grid)] {
            let s = GrfSampler::new(&g, &cov).unwrap();
            let uv = s.sample_velocity(VelocityScale::Unscaled, 9, 1).unwrap();
            let kmax = g.kx()[g.nx() / 2].max(g.ky()[g.ny() / 2].abs());
            let umax = max_abs(&uv);
            assert!(max_abs(&divergence(&g, uv.view()).unwrap()) <= 1e-12 * umax * kmax);
            // The same draws as the streamfunction sample, without its Nyquist row and column.
            let mut spec = g.fft(s.sample(9, 1).unwrap().view()).unwrap();
            spec.column_mut(g.nx() / 2).fill(Complex64::new(0.0, 0.0));
            spec.row_mut(g.ny() / 2).fill(Complex64::new(0.0, 0.0));
            let psi = g.ifft(spec.view()).unwrap();
            let via_operators = velocity_from_streamfunction(&g, psi.view()).unwrap();
            assert!(max_abs(&(&uv - &via_operators)) <= 1e-12 * umax);
            let minus_lap = laplacian(&g, psi.view()).unwrap().mapv(|x| -x);
            let w = vorticity(&g, uv.view()).unwrap();
            assert!(max_abs(&(&w - &minus_lap)) <= 1e-12 * max_abs(&minus_lap));
        }
    }
}

#[test]
fn velocity_scaling_hits_the_target_speed() {
    let g = Grid2d::square(64, 2.0 * PI).unwrap();
    let s = GrfSampler::new(&g, &Covariance::default()).unwrap();
    let rms = |uv: ArrayView3<f64>| (uv.iter().map(|x| x * x).sum::<f64>() / (64.0 * 64.0)).sqrt();
    let exact = s.sample_velocity_batch(VelocityScale::SampleRms(0.5), 4, 0..8).unwrap();
    for uv in exact.outer_iter() {
        assert!((rms(uv) - 0.5).abs() < 1e-13);
    }
    let n = 64;
    let batch = s.sample_velocity_batch(VelocityScale::ExpectedRms(2.0), 4, 0..n).unwrap();
    let ms = batch.outer_iter().map(|uv| rms(uv).powi(2)).sum::<f64>() / n as f64;
    // Var of one sample's ⟨|u|²⟩ = 2 Σ_k q(k)², q = (kx² + ky²) v scaled to Σ q = U².
    let (kx, ky) = (g.kx_deriv(), g.ky_deriv()); // zero on the Nyquist modes, which carry no velocity
    let c = 4.0 / s.velocity_mean_square();
    let q = Array2::from_shape_fn(g.spectral_shape(), |(i, j)| {
        if i == 32 || j == 32 { 0.0 } else { c * (kx[j] * kx[j] + ky[i] * ky[i]) * s.mode_variances()[[i, j]] }
    });
    assert!((covariance::full_plane_sum(&g, &q) - 4.0).abs() < 1e-12);
    let q2 = q.mapv(|x| x * x);
    let se = (2.0 * covariance::full_plane_sum(&g, &q2) / n as f64).sqrt();
    eprintln!("mean square speed {ms:.4} vs 4 ± {se:.4}");
    assert!((ms - 4.0).abs() < 3.0 * se);
    let zero = Covariance::Fno(GrfParams { sigma: Some(0.0), ..GrfParams::default() });
    let err = sample_velocity(&g, &zero, VelocityScale::ExpectedRms(1.0), 0, 0).unwrap_err();
    assert!(matches!(err, PdeError::Parameter { name: "rms", .. }));
}

#[test]
fn coarse_samples_are_truncations_of_fine_ones() {
    let cases = [
        (Grid2d::square(32, 1.0).unwrap(), Grid2d::square(128, 1.0).unwrap(), Covariance::default()),
        (
            Grid2d::new(32, 16, 2.0, 1.0).unwrap(),
            Grid2d::new(64, 96, 2.0, 1.0).unwrap(),
            matern(1.0, 0.2, 1.0, MaternNormalisation::Continuum),
        ),
    ];
    for (seed, (coarse, fine, cov)) in (8..).zip(cases) {
        let (sc, sf) = (GrfSampler::new(&coarse, &cov).unwrap(), GrfSampler::new(&fine, &cov).unwrap());
        let (nc, nf) = ((coarse.nx() * coarse.ny()) as f64, (fine.nx() * fine.ny()) as f64);
        let fine_cell = |i: usize, j: usize| {
            let my = signed_index(i, coarse.ny());
            (my.rem_euclid(fine.ny() as isize) as usize, j)
        };
        // Shared, non-Nyquist modes: identical variances and identical draws.
        let shared = |i: usize, j: usize| j < coarse.nx() / 2 && i != coarse.ny() / 2;
        for ((i, j), v) in sc.mode_variances().indexed_iter() {
            if shared(i, j) {
                let vf = sf.mode_variances()[fine_cell(i, j)];
                assert!((v - vf).abs() <= 1e-15 * v.abs(), "v at ({i}, {j})");
            }
        }
        let mut low = (0.0, 0.0); // variance of the mode (mx, my) = (1, 2) on both grids
        let n = 300;
        for index in 0..n {
            let (fc, ff) = (sc.sample(seed, index).unwrap(), sf.sample(seed, index).unwrap());
            let (spc, spf) = (coarse.fft(fc.view()).unwrap() / nc, fine.fft(ff.view()).unwrap() / nf);
            let scale = spc.iter().fold(0.0_f64, |m, c| m.max(c.norm()));
            for ((i, j), c) in spc.indexed_iter() {
                if shared(i, j) {
                    assert!((c - spf[fine_cell(i, j)]).norm() <= 1e-12 * scale, "mode ({i}, {j})");
                }
            }
            low = (low.0 + spc[[2, 1]].norm_sqr(), low.1 + spf[[2, 1]].norm_sqr());
        }
        let want = sc.mode_variances()[[2, 1]];
        let (vc, vf) = (low.0 / n as f64 / want, low.1 / n as f64 / want);
        eprintln!(
            "mode (1, 2): variance ratio coarse {vc:.4}, fine {vf:.4}, standard error {:.4}",
            1.0 / (n as f64).sqrt()
        );
        assert!((vc - vf).abs() < 1e-10);
        assert!((vc - 1.0).abs() < 3.0 / (n as f64).sqrt());
    }
}

#[test]
fn grid_normalised_matern_changes_little_with_resolution() {
    let cov = matern(1.0, 0.1, 1.5, MaternNormalisation::Grid);
    let v64 = GrfSampler::new(&Grid2d::square(64, 1.0).unwrap(), &cov).unwrap();
    let v128 = GrfSampler::new(&Grid2d::square(128, 1.0).unwrap(), &cov).unwrap();
    let ratio = v64.mode_variances()[[1, 0]] / v128.mode_variances()[[1, 0]];
    eprintln!("grid-normalised Matérn v(k) ratio 64² / 128²: {ratio:.6}");
    assert!(ratio > 1.0 && ratio - 1.0 < 2e-3);
}

#[test]
fn bad_parameters_name_the_parameter() {
    let g = Grid2d::square(16, 1.0).unwrap();
    let name = |cov: Covariance| match GrfSampler::new(&g, &cov) {
        Err(PdeError::Parameter { name, .. }) => name,
        _ => "(no parameter error)",
    };
    for alpha in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(name(fno(alpha, 7.0, None)), "alpha");
    }
    for tau in [-1.0, f64::NAN] {
        assert_eq!(name(fno(2.5, tau, Some(1.0))), "tau");
    }
    assert_eq!(name(fno(2.5, 0.0, None)), "tau");
    assert_eq!(name(Covariance::Fno(GrfParams { tau: 0.0, sigma: Some(1.0), mean_zero: false, alpha: 2.0 })), "tau");
    assert!(GrfSampler::new(&g, &fno(2.5, 0.0, Some(1.0))).is_ok());
    assert_eq!(name(fno(2.5, 7.0, Some(-1.0))), "sigma");
    assert_eq!(name(fno(2.5, 7.0, Some(f64::NAN))), "sigma");
    for l in [0.0, -0.1, f64::NAN] {
        assert_eq!(name(matern(1.0, l, 1.5, MaternNormalisation::Grid)), "length_scale");
    }
    for nu in [0.0, f64::NAN] {
        assert_eq!(name(matern(1.0, 0.1, nu, MaternNormalisation::Continuum)), "nu");
    }
    assert_eq!(name(matern(-1.0, 0.1, 1.5, MaternNormalisation::Grid)), "variance");
    let s = GrfSampler::new(&g, &Covariance::default()).unwrap();
    for scale in [VelocityScale::ExpectedRms(-1.0), VelocityScale::SampleRms(f64::NAN)] {
        assert!(matches!(s.sample_velocity(scale, 0, 0), Err(PdeError::Parameter { name: "rms", .. })));
    }
    assert!(matches!(sample(&g, &fno(0.0, 7.0, None), 0, 0), Err(PdeError::Parameter { name: "alpha", .. })));
}
