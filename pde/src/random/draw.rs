//! The grid-independent draw order of the Fourier coefficients and its assembly into a
//! Hermitian half-plane spectrum (see "Draw order" in the [module documentation](super)).

use ndarray::{Array2, ShapeBuilder};
use num_complex::Complex64;
use rand::Rng;

use crate::error::{PdeError, Result};
use crate::grid::{Grid2d, signed_index};
use crate::rng::SampleRng;

/// Each position uses two 64-bit outputs, i.e. four 32-bit ChaCha words.
const WORDS_PER_POSITION: u128 = 4;

/// Gaps of at most this many positions are skipped by drawing rather than by seeking.
const SKIP_BY_DRAWING: u64 = 8;

/// Position of the mode with integer wavenumbers `(mx, my)`, `mx ≥ 0`, in the canonical order:
/// square shells `r = max(mx, |my|)`; shell `r` fills positions `r(2r − 1) .. (r + 1)(2r + 1)`
/// with first the column `mx = r`, `my = −r..=r`, then for `mx = 0..r` the pair
/// `my = −r, my = +r`.
pub(crate) fn position(mx: u64, my: i64) -> u64 {
    let r = mx.max(my.unsigned_abs());
    let start = r * (2 * r).saturating_sub(1);
    let offset = if mx == r {
        // |my| ≤ r here, so my + r ≥ 0.
        (my + r as i64) as u64
    } else {
        2 * r + 1 + 2 * mx + u64::from(my > 0)
    };
    start + offset
}

/// A standard complex normal (`E|ξ|² = 1`, real and imaginary parts independent `N(0, ½)`) from
/// two 64-bit words, by Box–Muller: `ξ = √(−ln u₁) e^{2πi u₂}`, `u₁ ∈ (0, 1]`, `u₂ ∈ [0, 1)`.
fn complex_normal(a: u64, b: u64) -> Complex64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    let u1 = ((a >> 11) + 1) as f64 * SCALE;
    let u2 = (b >> 11) as f64 * SCALE;
    Complex64::from_polar((-u1.ln()).sqrt(), 2.0 * std::f64::consts::PI * u2)
}

/// How a stored spectral cell is made from its canonical draw `ξ`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// Zero variance: nothing is drawn.
    Zero,
    /// `a ξ`.
    Free,
    /// `a conj(ξ)`: the conjugate partner of a `Free` cell of a Hermitian column.
    Conj,
    /// `a √2 Re ξ`: a self-conjugate mode, real with variance `a²`.
    Real,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    rule: Rule,
    /// Index into the sorted draws.
    draw: usize,
    /// Standard deviation of the DFT coefficient, `nx ny √v(k)`.
    amp: f64,
}

/// For one grid and covariance: which canonical positions to draw, and how each stored cell of
/// the half-plane spectrum is assembled from them.
#[derive(Debug, Clone)]
pub(crate) struct DrawPlan {
    /// Canonical positions, sorted and distinct.
    positions: Vec<u64>,
    /// Cells in the memory order of the spectral layout (ky fastest).
    cells: Vec<Cell>,
    ny: usize,
    nkx: usize,
}

impl DrawPlan {
    /// `amp` holds the DFT standard deviations `nx ny √v(k)` in spectral layout.
    pub(crate) fn new(grid: &Grid2d, amp: &Array2<f64>) -> Self {
        let (nx, ny, nkx) = (grid.nx(), grid.ny(), grid.nkx());
        let mut cells = Vec::with_capacity(ny * nkx);
        let mut wanted: Vec<(u64, usize)> = Vec::with_capacity(ny * nkx);
        for j in 0..nkx {
            let hermitian = j == 0 || j == nx / 2;
            for i in 0..ny {
                let my = signed_index(i, ny) as i64;
                let a = amp[[i, j]];
                let (rule, canonical_my) = if a == 0.0 {
                    (Rule::Zero, 0)
                } else if !hermitian {
                    (Rule::Free, my)
                } else if my == 0 || i == ny / 2 {
                    (Rule::Real, my.abs())
                } else if my > 0 {
                    (Rule::Free, my)
                } else {
                    (Rule::Conj, -my)
                };
                if rule != Rule::Zero {
                    wanted.push((position(j as u64, canonical_my), cells.len()));
                }
                cells.push(Cell { rule, draw: 0, amp: a });
            }
        }
        wanted.sort_unstable();
        let mut positions: Vec<u64> = Vec::with_capacity(wanted.len());
        for (p, cell) in wanted {
            if positions.last() != Some(&p) {
                positions.push(p);
            }
            cells[cell].draw = positions.len() - 1;
        }
        Self { positions, cells, ny, nkx }
    }

    /// The canonical draws, in position order, from `rng` (which must be at the start of its
    /// stream).
    fn draws(&self, rng: &mut SampleRng) -> Vec<Complex64> {
        let mut next = 0u64;
        let mut out = Vec::with_capacity(self.positions.len());
        for &p in &self.positions {
            let gap = p - next;
            if gap > SKIP_BY_DRAWING {
                rng.set_word_pos(u128::from(p) * WORDS_PER_POSITION);
            } else {
                for _ in 0..2 * gap {
                    rng.next_u64();
                }
            }
            let a = rng.next_u64();
            let b = rng.next_u64();
            out.push(complex_normal(a, b));
            next = p + 1;
        }
        out
    }

    /// The DFT of a sample, assembled from the draws of `rng`, in spectral layout.
    ///
    /// # Errors
    /// [`PdeError::InvalidGrid`] only if the plan and its grid disagree (never by construction).
    pub(crate) fn spectrum(&self, rng: &mut SampleRng) -> Result<Array2<Complex64>> {
        let draws = self.draws(rng);
        let zero = Complex64::new(0.0, 0.0);
        let data: Vec<Complex64> = self
            .cells
            .iter()
            .map(|c| match c.rule {
                Rule::Zero => zero,
                Rule::Free => draws[c.draw] * c.amp,
                Rule::Conj => draws[c.draw].conj() * c.amp,
                Rule::Real => Complex64::new(std::f64::consts::SQRT_2 * c.amp * draws[c.draw].re, 0.0),
            })
            .collect();
        Array2::from_shape_vec((self.ny, self.nkx).f(), data).map_err(|e| PdeError::InvalidGrid(e.to_string()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn positions_fill_each_shell_rectangle_exactly_once() {
        for r in 0..12u64 {
            let mut ps: Vec<u64> =
                (0..=r).flat_map(|mx| (-(r as i64)..=r as i64).map(move |my| position(mx, my))).collect();
            ps.sort_unstable();
            let expected: Vec<u64> = (0..(r + 1) * (2 * r + 1)).collect();
            assert_eq!(ps, expected, "shells 0..={r}");
        }
        assert_eq!(position(0, 0), 0);
        assert_eq!((position(1, -1), position(1, 1), position(0, -1), position(0, 1)), (1, 3, 4, 5));
    }

    #[test]
    fn seeking_and_drawing_agree() {
        // Positions far apart force seeks; the values must equal those of sequential reading.
        let mut seq = stream(3, 9);
        let sequential: Vec<Complex64> = (0..40).map(|_| complex_normal(seq.next_u64(), seq.next_u64())).collect();
        let grid = Grid2d::square(4, 1.0).unwrap();
        let plan = DrawPlan { positions: vec![1, 2, 12, 13, 39], cells: Vec::new(), ny: grid.ny(), nkx: grid.nkx() };
        let got = plan.draws(&mut stream(3, 9));
        let want: Vec<Complex64> = plan.positions.iter().map(|&p| sequential[p as usize]).collect();
        assert_eq!(got, want);
    }
}
