"""Darcy flow -div(a grad u) = 1 on the unit square, zero Dirichlet, with scipy.sparse + spsolve.

s x s nodes including the boundary (FNO convention, h = 1/(s-1)); the unknowns are the (s-2)^2
interior nodes, ordered row-major (x fastest). 5-point finite differences with face coefficients
the arithmetic mean of the two nodal values. Coefficient: an FNO-style thresholded random field
(a seeded Gaussian random field, alpha = 2, tau = 3, set to 12 where >= 0 and 3 elsewhere).
Solved by scipy.sparse.linalg.spsolve with default settings (SuperLU, COLAMD ordering).
Times the solve alone (A assembled in CSC beforehand) and assembly + solve, for s = 129 and 257,
and prints the relative residual ||Au - f|| / ||f||. Float64.
Rust counterparts: criterion benches `darcy/129`, `darcy/257` (fieldflow-pde; they time
assemble + factor + solve with a reused symbolic factorisation).
"""
import sys

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from _bench import bench


def coefficient(s, seed=0, alpha=2.0, tau=3.0):
    """Thresholded smooth random field on the s x s nodes: 12 where the field >= 0, else 3."""
    ky = np.fft.fftfreq(s, 1.0 / s)[:, None]
    kx = np.fft.rfftfreq(s, 1.0 / s)[None, :]
    spec = (4 * np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    spec[0, 0] = 0.0
    g = np.fft.irfft2(np.fft.rfft2(np.random.default_rng(seed).standard_normal((s, s))) * spec, s=(s, s))
    return np.where(g >= 0, 12.0, 3.0)


def assemble(a):
    """CSC matrix of -div(a grad .) on the interior nodes and the load vector f = 1."""
    s = a.shape[0]
    m, h2 = s - 2, 1.0 / (s - 1) ** 2
    c = a[1:-1, 1:-1]
    aw = 0.5 * (c + a[1:-1, :-2]) / h2   # west face  (x - h/2)
    ae = 0.5 * (c + a[1:-1, 2:]) / h2    # east face  (x + h/2)
    as_ = 0.5 * (c + a[:-2, 1:-1]) / h2  # south face (y - h/2)
    an = 0.5 * (c + a[2:, 1:-1]) / h2    # north face (y + h/2)
    idx = np.arange(m * m).reshape(m, m)
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [(aw + ae + as_ + an).ravel()]
    for coef, sl_from, sl_to in (
        (aw, np.s_[:, 1:], np.s_[:, :-1]), (ae, np.s_[:, :-1], np.s_[:, 1:]),
        (as_, np.s_[1:, :], np.s_[:-1, :]), (an, np.s_[:-1, :], np.s_[1:, :]),
    ):
        rows.append(idx[sl_from].ravel())
        cols.append(idx[sl_to].ravel())
        vals.append(-coef[sl_from].ravel())
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m * m, m * m))
    return A, np.ones(m * m)


def main(sizes=(129, 257)):
    for s in sizes:
        a = coefficient(s)
        A, f = assemble(a)
        repeats = 20 if s <= 129 else 7
        bench("scipy", f"darcy/{s}", lambda: spsolve(A, f), repeats=repeats, warmup=1, extra="part=solve")
        bench("scipy", f"darcy/{s}", lambda: spsolve(*assemble(a)), repeats=repeats, warmup=1,
              extra="part=assemble+solve")
        u = spsolve(A, f)
        res = np.linalg.norm(A @ u - f) / np.linalg.norm(f)
        print(f"check bench=darcy/{s} unknowns={A.shape[0]} nnz={A.nnz} rel_residual={res:.3e} "
              f"u_max={u.max():.6e} frac_a12={np.mean(a == 12.0):.3f}", flush=True)


if __name__ == "__main__":
    main(tuple(int(x) for x in sys.argv[1:]) or (129, 257))
