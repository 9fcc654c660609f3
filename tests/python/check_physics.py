"""Independent checks of fieldflow data files with h5py + numpy (no fieldflow code involved).

usage: check_physics.py velocity FILE.h5   spectral divergence of (u, v) at round-off
       check_physics.py darcy FILE.h5      5-point FD residual of -div(a grad u) = f at round-off
Exit code 0 when the check passes; prints the measured numbers.
"""
import sys

import h5py
import numpy as np


def velocity(path):
    with h5py.File(path, "r") as f:
        channels = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["channels"]]
        fields = f["fields"][...].astype(np.float64)
        lx, ly = float(f.attrs["lx"]), float(f.attrs["ly"])
    iu, iv = channels.index("u"), channels.index("v")
    u, v = fields[:, iu], fields[:, iv]
    ny, nx = u.shape[-2:]
    kx = 2 * np.pi * np.fft.rfftfreq(nx, d=lx / nx)
    ky = 2 * np.pi * np.fft.fftfreq(ny, d=ly / ny)
    kx[-1] = 0.0  # odd derivatives zero the Nyquist mode
    ky[ny // 2] = 0.0
    div = np.fft.irfft2(1j * kx[None, None, :] * np.fft.rfft2(u) + 1j * ky[None, :, None] * np.fft.rfft2(v), s=(ny, nx))
    scale = np.abs(fields[:, [iu, iv]]).max() * max(np.abs(kx).max(), np.abs(ky).max())
    rel = np.abs(div).max() / scale
    print(f"samples={u.shape[0]} grid={ny}x{nx} max|div|={np.abs(div).max():.3e} relative={rel:.3e}")
    return rel < 1e-12


def darcy(path):
    with h5py.File(path, "r") as f:
        u = f["fields"][:, 0].astype(np.float64)
        a = f["coefficients"][:, 0].astype(np.float64)
        config = f.attrs["config"]
    s = u.shape[-1]
    h = 1.0 / (s - 1)
    forcing = 1.0
    for line in (config.decode() if isinstance(config, bytes) else str(config)).splitlines():
        if line.strip().startswith("forcing ="):
            forcing = float(line.split("=")[1])
    ae = 0.5 * (a[:, 1:-1, 1:-1] + a[:, 1:-1, 2:])
    aw = 0.5 * (a[:, 1:-1, 1:-1] + a[:, 1:-1, :-2])
    an = 0.5 * (a[:, 1:-1, 1:-1] + a[:, 2:, 1:-1])
    as_ = 0.5 * (a[:, 1:-1, 1:-1] + a[:, :-2, 1:-1])
    c = u[:, 1:-1, 1:-1]
    au = (ae * (c - u[:, 1:-1, 2:]) + aw * (c - u[:, 1:-1, :-2]) + an * (c - u[:, 2:, 1:-1]) + as_ * (c - u[:, :-2, 1:-1])) / h**2
    r = np.abs(au - forcing).max() / forcing
    boundary = max(np.abs(u[:, 0]).max(), np.abs(u[:, -1]).max(), np.abs(u[:, :, 0]).max(), np.abs(u[:, :, -1]).max())
    print(f"samples={u.shape[0]} nodes={s} max|Au-f|/|f|={r:.3e} max|u_boundary|={boundary:.1e}")
    return r < 1e-9 and boundary == 0.0


if __name__ == "__main__":
    kind, path = sys.argv[1], sys.argv[2]
    ok = {"velocity": velocity, "darcy": darcy}[kind](path)
    sys.exit(0 if ok else 1)
