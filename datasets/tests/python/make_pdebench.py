"""Writes small files with PDEBench's exact 2D layouts with h5py, for the importer interop test.

Usage: make_pdebench.py {darcy|incomp-ns} FILE

Values follow value(n, t, c, y, x) = n*10000 + t*1000 + c*100 + y*10 + x + 0.5 (negated for
coefficients), stored in PDEBench's (x, y) axis order, float32; the incompressible NS datasets are
LZF-compressed like the upstream files. Sizes: N = 3, T = 3, X = 5, Y = 4.
"""

import sys

import h5py
import numpy as np

N, T, X, Y = 3, 3, 5, 4


def value(n, t, c, y, x):
    return n * 10000 + t * 1000 + c * 100 + y * 10 + x + 0.5


def darcy(path):
    n, x, y = np.meshgrid(np.arange(N), np.arange(X), np.arange(Y), indexing="ij")
    with h5py.File(path, "w") as f:
        f["tensor"] = value(n, 0, 0, y, x)[:, None].astype(np.float32)  # (N, 1, X, Y)
        f["nu"] = (-value(n, 0, 0, y, x)).astype(np.float32)  # (N, X, Y)
        f["x-coordinate"] = ((np.arange(X) + 0.5) / X).astype(np.float32)
        f["y-coordinate"] = ((np.arange(Y) + 0.5) / Y).astype(np.float32)
        f.attrs["beta"] = 1.0


def incomp_ns(path):
    n, t, x, y, c = np.meshgrid(np.arange(N), np.arange(T), np.arange(X), np.arange(Y), np.arange(2), indexing="ij")
    velocity = value(n, t, c, y, x).astype(np.float32)  # (N, T, X, Y, 2)
    force = -velocity[:, 0] - 0.0  # (N, X, Y, 2), t = 0 pattern negated
    with h5py.File(path, "w") as f:
        f.create_dataset("velocity", data=velocity, compression="lzf", chunks=(1, 1, X, Y, 2))
        f.create_dataset("force", data=force.astype(np.float32), compression="lzf")
        f.create_dataset("particles", data=np.zeros((N, T, X, Y, 1), np.float32), compression="lzf")
        f.create_dataset("t", data=np.tile(np.arange(T, dtype=np.float32) * 0.5, (N, 1)), compression="lzf")


if __name__ == "__main__":
    {"darcy": darcy, "incomp-ns": incomp_ns}[sys.argv[1]](sys.argv[2])
