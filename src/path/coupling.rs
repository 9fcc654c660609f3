//! Exact minibatch optimal-transport coupling (OT-CFM).
//!
//! For batches `x0` (noise) and `x1` (data) of `B` samples each, the coupling pairs `x0_i` with
//! `x1_π(i)` for the permutation
//!
//! ```text
//! π = argmin_π Σ_i ‖x0_i − x1_π(i)‖²        (squared Euclidean over all non-batch axes),
//! ```
//!
//! the exact optimal transport plan between the two empirical measures (with uniform weights and
//! equal sizes an optimal plan is a permutation, Birkhoff–von Neumann). This is torchcfm's
//! `ExactOptimalTransportConditionalFlowMatcher` (Tong et al. 2024), except that the pairs are
//! the permutation itself rather than `B` draws with replacement from the plan, so every noise
//! sample is used once.
//!
//! The assignment is solved exactly in `f64` by the shortest-augmenting-path Hungarian method
//! with potentials (Kuhn–Munkres in the Jonker–Volgenant form), `O(B³)`. Existing crates did not
//! fit: `pathfinding`'s `kuhn_munkres` needs totally ordered (integer) weights, which would mean
//! quantising the costs, and `lsap` is an unmaintained single release.
//!
//! Costs are computed in `f64` from the samples directly, `Σ (a − b)²`, without the cancellation
//! of `‖a‖² + ‖b‖² − 2 a·b`.

use burn::tensor::{Int, Tensor, TensorData};
use ndarray::{Array2, ArrayView2, ArrayViewD, Axis};

use super::PathError;

/// The squared Euclidean distances `C[i, j] = ‖x0_i − x1_j‖²` between the samples (axis 0) of
/// two batches.
///
/// # Shapes
/// `x0`, `x1`: `[B, ...]` (equal); output: `[B, B]`.
///
/// # Errors
/// [`PathError::Shape`] if the shapes differ or have no batch axis; [`PathError::NonFinite`] if
/// an input holds NaN or infinity.
pub fn cost_matrix(x0: ArrayViewD<f64>, x1: ArrayViewD<f64>) -> Result<Array2<f64>, PathError> {
    if x0.shape() != x1.shape() || x0.ndim() == 0 {
        return Err(PathError::Shape { what: "x1", expected: x0.shape().to_vec(), got: x1.shape().to_vec() });
    }
    for (what, x) in [("x0", &x0), ("x1", &x1)] {
        if x.iter().any(|v| !v.is_finite()) {
            return Err(PathError::NonFinite { what });
        }
    }
    let b = x0.shape()[0];
    let m = x0.len().checked_div(b).unwrap_or(0);
    // Samples as contiguous rows (`iter` walks any layout in logical, row-major order).
    let rows = |x: &ArrayViewD<f64>| x.iter().copied().collect::<Vec<f64>>();
    let (a, c) = (rows(&x0), rows(&x1));
    Ok(Array2::from_shape_fn((b, b), |(i, j)| {
        let (p, q) = (&a[i * m..(i + 1) * m], &c[j * m..(j + 1) * m]);
        p.iter().zip(q).map(|(p, q)| (p - q) * (p - q)).sum()
    }))
}

/// The permutation `π` minimising `Σ_i cost[i, π(i)]` for a square cost matrix: row `i` is
/// assigned column `π[i]`.
///
/// # Errors
/// [`PathError::Shape`] if `cost` is not square; [`PathError::NonFinite`] if it holds NaN or
/// infinity.
///
/// ```
/// use fieldflow::path::solve_assignment;
/// let cost = ndarray::arr2(&[[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]]);
/// assert_eq!(solve_assignment(cost.view()).unwrap(), vec![1, 0, 2]); // 1 + 2 + 2
/// ```
pub fn solve_assignment(cost: ArrayView2<f64>) -> Result<Vec<usize>, PathError> {
    let n = cost.nrows();
    if cost.ncols() != n {
        return Err(PathError::Shape {
            what: "cost (a square matrix)",
            expected: vec![n, n],
            got: cost.shape().to_vec(),
        });
    }
    if cost.iter().any(|v| !v.is_finite()) {
        return Err(PathError::NonFinite { what: "cost" });
    }
    // Rows and columns are numbered from 1; column 0 is a virtual start for each augmentation.
    // u, v: dual potentials with u[i] + v[j] ≤ cost[i][j], tight on matched pairs.
    // owner[j]: the row matched to column j (0 = none); way[j]: the previous column on the
    // shortest alternating path to j.
    let mut u = vec![0.0; n + 1];
    let mut v = vec![0.0; n + 1];
    let mut owner = vec![0usize; n + 1];
    let mut way = vec![0usize; n + 1];
    for row in 1..=n {
        owner[0] = row;
        let mut j0 = 0;
        let mut min_slack = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        // Dijkstra on reduced costs until a free column is reached.
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = None;
            for j in 1..=n {
                if used[j] {
                    continue;
                }
                let reduced = cost[[i0 - 1, j - 1]] - u[i0] - v[j];
                if reduced < min_slack[j] {
                    min_slack[j] = reduced;
                    way[j] = j0;
                }
                if min_slack[j] < delta {
                    delta = min_slack[j];
                    j1 = Some(j);
                }
            }
            // With finite costs an unused column always exists while the row is unmatched.
            let Some(j1) = j1 else {
                return Err(PathError::NonFinite { what: "cost (reduced costs overflowed)" });
            };
            for j in 0..=n {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        // Flip the alternating path back to the start.
        while j0 != 0 {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
        }
    }
    let mut perm = vec![0usize; n];
    for j in 1..=n {
        perm[owner[j] - 1] = j - 1;
    }
    Ok(perm)
}

/// The exact OT permutation `π` between two batches of arrays: `x0_i` is paired with `x1_π(i)`.
///
/// # Shapes
/// `x0`, `x1`: `[B, ...]` (equal); output: `B` indices.
///
/// # Errors
/// As [`cost_matrix`].
pub fn ot_permutation_array(x0: ArrayViewD<f64>, x1: ArrayViewD<f64>) -> Result<Vec<usize>, PathError> {
    solve_assignment(cost_matrix(x0, x1)?.view())
}

/// The exact OT permutation `π` between two batches of tensors (read back to the host and
/// compared in `f64`): `x0_i` is paired with `x1_π(i)`.
///
/// # Shapes
/// `x0`, `x1`: `[B, ...]` (equal); output: `B` indices.
///
/// # Errors
/// As [`cost_matrix`], and [`PathError::Readback`] if the device cannot return the values.
pub fn ot_permutation<const D: usize>(x0: &Tensor<D>, x1: &Tensor<D>) -> Result<Vec<usize>, PathError> {
    let (a, b) = (host("x0", x0)?, host("x1", x1)?);
    ot_permutation_array(a.view(), b.view())
}

fn host<const D: usize>(what: &'static str, x: &Tensor<D>) -> Result<ndarray::ArrayD<f64>, PathError> {
    crate::bridge::to_array(x.clone()).map_err(|reason| PathError::Readback { what, reason })
}

/// `x0` reordered so that its row `j` is the noise sample paired with `x1[j]` by the exact OT
/// coupling: `x0'[π(i)] = x0[i]`. The data keep their order.
///
/// # Shapes
/// `x0`, `x1`: `[B, ...]` (equal); output: `[B, ...]`.
///
/// # Errors
/// As [`ot_permutation`].
pub fn couple<const D: usize>(x0: Tensor<D>, x1: &Tensor<D>) -> Result<Tensor<D>, PathError> {
    let perm = ot_permutation(&x0, x1)?;
    let source: Vec<i64> = inverse(&perm).into_iter().map(|i| i as i64).collect();
    let n = source.len();
    let idx = Tensor::<1, Int>::from_data(TensorData::new(source, [n]), &x0.device());
    Ok(x0.select(0, idx))
}

/// As [`couple`], for arrays: `x0` reordered so that row `j` pairs with `x1[j]`.
///
/// # Errors
/// As [`cost_matrix`].
pub fn couple_array(x0: ArrayViewD<f64>, x1: ArrayViewD<f64>) -> Result<ndarray::ArrayD<f64>, PathError> {
    let perm = ot_permutation_array(x0.view(), x1)?;
    Ok(x0.select(Axis(0), &inverse(&perm)))
}

/// `σ⁻¹` of a permutation: `out[σ[i]] = i`.
fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut out = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        out[p] = i;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::bridge::to_tensor;
    use burn::tensor::Device;
    use fieldflow_pde::rng::stream;
    use ndarray::{Array, Array4, IxDyn};
    use rand::RngExt;
    use rand_distr::StandardNormal;

    fn random(shape: &[usize], seed: u64) -> ndarray::ArrayD<f64> {
        let mut rng = stream(seed, 0);
        Array::from_shape_simple_fn(IxDyn(shape), || rng.sample(StandardNormal))
    }

    fn total(cost: &Array2<f64>, perm: &[usize]) -> f64 {
        perm.iter().enumerate().map(|(i, &j)| cost[[i, j]]).sum()
    }

    /// All permutations of `0..n`, by extending prefixes with each unused element.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new()];
        for _ in 0..n {
            out = out
                .into_iter()
                .flat_map(|p: Vec<usize>| {
                    (0..n).filter(|j| !p.contains(j)).map(|j| [p.as_slice(), &[j]].concat()).collect::<Vec<_>>()
                })
                .collect();
        }
        out
    }

    fn is_bijection(perm: &[usize]) -> bool {
        let mut seen = vec![false; perm.len()];
        perm.iter().all(|&j| j < seen.len() && !std::mem::replace(&mut seen[j], true))
    }

    #[test]
    fn assignment_equals_brute_force() {
        for n in 1..=7 {
            for seed in 0..6 {
                let (x0, x1) = (random(&[n, 3, 2], 100 + seed), random(&[n, 3, 2], 200 + seed));
                let cost = cost_matrix(x0.view(), x1.view()).unwrap();
                let perm = solve_assignment(cost.view()).unwrap();
                assert!(is_bijection(&perm), "{perm:?}");
                let all = permutations(n);
                let best = all.iter().min_by(|a, b| total(&cost, a).total_cmp(&total(&cost, b))).unwrap();
                let (got, want) = (total(&cost, &perm), total(&cost, best));
                assert!((got - want).abs() <= 1e-12 * want.max(1.0), "n = {n}: {got} vs brute force {want}");
                // Continuous random costs have a unique optimum (almost surely).
                assert_eq!(&perm, best, "n = {n}, seed = {seed}");
                assert!(got <= total(&cost, &(0..n).collect::<Vec<_>>()) + 1e-12);
            }
        }
    }

    #[test]
    fn assignment_with_ties_is_optimal() {
        // Small integer costs with many ties and degenerate rows.
        for n in 2..=6 {
            let mut rng = stream(5, n as u64);
            let cost = Array2::from_shape_fn((n, n), |_| f64::from(rng.random_range(0..3u8)));
            let perm = solve_assignment(cost.view()).unwrap();
            assert!(is_bijection(&perm));
            let want = permutations(n).iter().map(|p| total(&cost, p)).fold(f64::INFINITY, f64::min);
            assert_eq!(total(&cost, &perm), want, "{cost}");
        }
        let constant = Array2::from_elem((5, 5), 2.5);
        assert!(is_bijection(&solve_assignment(constant.view()).unwrap()));
    }

    #[test]
    fn shuffled_batch_is_unshuffled() {
        // x1 is x0 in another order plus small noise: the OT pairing finds the order.
        let b = 32;
        let x0 = random(&[b, 2, 8, 8], 1);
        let mut order: Vec<usize> = (0..b).collect();
        let mut rng = stream(2, 0);
        for i in (1..b).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let noise = random(&[b, 2, 8, 8], 3) * 1e-3;
        let x1 = x0.select(Axis(0), &order) + noise;
        let perm = ot_permutation_array(x0.view(), x1.view()).unwrap();
        // x1[j] = x0[order[j]], so x0[i] pairs with the j where order[j] = i.
        assert_eq!(perm, inverse(&order));
        let coupled = couple_array(x0.view(), x1.view()).unwrap();
        assert!(coupled.iter().zip(x1.iter()).all(|(a, b)| (a - b).abs() < 1e-2));
    }

    #[test]
    fn tensor_coupling_reorders_noise_and_lowers_cost() {
        let device = Device::default();
        let (a0, a1) = (random(&[16, 1, 4, 4], 7), random(&[16, 1, 4, 4], 8));
        let a0 = a0.into_dimensionality::<ndarray::Ix4>().unwrap();
        let a1: Array4<f64> = a1.into_dimensionality().unwrap();
        let (x0, x1) = (to_tensor::<4, _>(a0.view(), &device), to_tensor::<4, _>(a1.view(), &device));
        let perm = ot_permutation(&x0, &x1).unwrap();
        assert!(is_bijection(&perm));
        let coupled = couple(x0.clone(), &x1).unwrap();
        let got = crate::bridge::to_array(coupled).unwrap();
        let before = crate::bridge::to_array(x0).unwrap();
        for (i, &j) in perm.iter().enumerate() {
            assert_eq!(got.index_axis(Axis(0), j), before.index_axis(Axis(0), i));
        }
        let x1h = crate::bridge::to_array(x1).unwrap();
        let cost = |x: &ndarray::ArrayD<f64>| (x - &x1h).mapv(|d| d * d).sum();
        assert!(cost(&got) < cost(&before));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (a, b) = (random(&[4, 3], 1), random(&[4, 2], 2));
        assert!(matches!(cost_matrix(a.view(), b.view()), Err(PathError::Shape { .. })));
        let mut c = random(&[4, 3], 3);
        c[[1, 1]] = f64::NAN;
        assert_eq!(cost_matrix(a.view(), c.view()), Err(PathError::NonFinite { what: "x1" }));
        let rect = Array2::<f64>::zeros((2, 3));
        assert!(matches!(solve_assignment(rect.view()), Err(PathError::Shape { .. })));
        assert!(solve_assignment(Array2::<f64>::zeros((0, 0)).view()).unwrap().is_empty());
    }
}
