#!/usr/bin/env python3
"""Is a solve resolved? Compares the stored spectra of two native fieldflow files of the same
setting solved at two resolutions (e.g. 128² and 256², both stored at 64²), per integer shell.

    .venv/bin/python scripts/resolution-check.py data/kolmogorov-solve128.h5 data/kolmogorov-solve256.h5

Every snapshot of /trajectories counts (snapshots of one run are correlated, so the sampling
error is computed from the per-run mean spectra: one standard error of the ratio, from both
files). Prints, for the shells holding at least --min-energy of the first file's energy, the ratio
E_fine / E_coarse, its error, and whether |ratio - 1| <= 5 % + 2 sigma.
"""
import argparse

import h5py
import numpy as np


def shell_spectra(path):
    with h5py.File(path, "r") as f:
        t = f["trajectories"][...].astype(np.float64)  # [runs, steps, channels, ny, nx]
    runs, steps, c, ny, nx = t.shape
    assert ny == nx, "square grids only"
    uh = np.fft.fft2(t, axes=(-2, -1)) / (nx * ny)
    e = 0.5 * (np.abs(uh) ** 2).sum(axis=2)  # [runs, steps, ny, nx]
    k = np.fft.fftfreq(nx, 1.0 / nx)
    shell = np.rint(np.hypot(*np.meshgrid(k, k, indexing="ij"))).astype(int)
    n_shells = nx // 2 + 1
    out = np.zeros((runs, steps, n_shells))
    for s in range(n_shells):
        out[..., s] = e[..., shell == s].sum(axis=-1)
    return out  # per run, per snapshot, per shell


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("coarse")
    p.add_argument("fine")
    p.add_argument("--min-energy", type=float, default=1e-6)
    a = p.parse_args()
    sc, sf = shell_spectra(a.coarse), shell_spectra(a.fine)
    mc, mf = sc.mean(axis=(0, 1)), sf.mean(axis=(0, 1))
    run_c, run_f = sc.mean(axis=1), sf.mean(axis=1)
    se_c = run_c.std(axis=0, ddof=1) / np.sqrt(len(run_c)) / mc
    se_f = run_f.std(axis=0, ddof=1) / np.sqrt(len(run_f)) / mf
    share = mc / mc.sum()
    print(f"coarse {a.coarse}: {sc.shape[0]} runs x {sc.shape[1]} snapshots; fine {a.fine}: {sf.shape[0]} x {sf.shape[1]}")
    print(f"{'shell':>5} {'share':>10} {'fine/coarse':>12} {'1 sigma':>8} {'ok':>4}")
    bad = 0
    checked = 0
    for s in range(1, len(mc)):
        if share[s] < a.min_energy:
            continue
        r = mf[s] / mc[s]
        sig = r * np.hypot(se_c[s], se_f[s])
        ok = abs(r - 1) <= 0.05 + 2 * sig
        bad += not ok
        checked += 1
        print(f"{s:>5} {share[s]:>10.3e} {r:>12.3f} {sig:>8.3f} {'yes' if ok else 'NO':>4}")
    print(f"{checked} shells checked, {bad} outside 5 % + 2 sigma")


if __name__ == "__main__":
    main()
