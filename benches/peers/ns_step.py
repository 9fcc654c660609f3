"""One time step of 2D incompressible Navier-Stokes (vorticity form) at 256^2, numpy vs JAX.

The scheme is the FNO data generator's (neuraloperator data_generation/navier_stokes/ns_2d.py):
pseudo-spectral on [0,1)^2, Crank-Nicolson for viscosity, explicit Euler for advection and forcing,
2/3-rule dealiasing of the advection term; nu = 1e-3, dt = 1e-4,
f = 0.1 (sin 2pi(x+y) + cos 2pi(x+y)), initial vorticity a seeded Gaussian random field
(alpha = 2.5, tau = 7, as in the generator). fieldflow conventions: arrays [y, x], rfft along x,
odd-derivative multipliers zero the Nyquist modes (what ns_2d.py's ifft2(...).real amounts to).
Float64 throughout. Prints one timing line per implementation and the numpy/JAX max relative
difference after 10 steps. Rust counterpart: criterion bench `ns_step/256` (fieldflow-pde).
"""
import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

from _bench import bench  # noqa: E402

N, NU, DT = 256, 1e-3, 1e-4


def setup(n=N, seed=0):
    ky = np.fft.fftfreq(n, 1.0 / n)[:, None]          # integer wavenumbers along y (rows)
    kx = np.fft.rfftfreq(n, 1.0 / n)[None, :]         # along x (columns, half spectrum)
    lap = 4 * np.pi**2 * (kx**2 + ky**2)              # negative Laplacian
    lap[0, 0] = 1.0
    kmax = n // 2
    dealias = ((np.abs(kx) <= 2 / 3 * kmax) & (np.abs(ky) <= 2 / 3 * kmax)).astype(np.float64)
    dkx = 2j * np.pi * np.where(np.abs(kx) == kmax, 0, kx)   # d/dx, Nyquist zeroed
    dky = 2j * np.pi * np.where(np.abs(ky) == kmax, 0, ky)   # d/dy, Nyquist zeroed
    x = np.arange(n) / n
    X, Y = np.meshgrid(x, x)                          # X varies along columns (x fastest)
    f = 0.1 * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))
    alpha, tau = 2.5, 7.0
    sigma = tau ** (0.5 * (2 * alpha - 2))
    spec = n * np.sqrt(2) * sigma * (4 * np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    spec[0, 0] = 0.0
    w0 = np.fft.irfft2(np.fft.rfft2(np.random.default_rng(seed).standard_normal((n, n))) * spec, s=(n, n))
    ops = dict(lap=lap, dealias=dealias, dkx=dkx, dky=dky, f_h=np.fft.rfft2(f))
    return np.fft.rfft2(w0), ops


def make_step(xp, ops):
    """Return step(w_h) -> w_h for array module xp (numpy or jax.numpy)."""
    lap, dealias, dkx, dky, f_h = (xp.asarray(ops[k]) for k in ("lap", "dealias", "dkx", "dky", "f_h"))
    fft = xp.fft
    s = (N, N)

    def step(w_h):
        psi_h = w_h / lap
        q = fft.irfft2(dky * psi_h, s=s)
        v = fft.irfft2(-dkx * psi_h, s=s)
        w_x = fft.irfft2(dkx * w_h, s=s)
        w_y = fft.irfft2(dky * w_h, s=s)
        F_h = fft.rfft2(q * w_x + v * w_y) * dealias
        return (-DT * F_h + DT * f_h + (1.0 - 0.5 * DT * NU * lap) * w_h) / (1.0 + 0.5 * DT * NU * lap)

    return step


def main():
    w_h, ops = setup()
    np_step = make_step(np, ops)
    jx_step = jax.jit(make_step(jnp, ops))
    w_h_j = jnp.asarray(w_h)

    bench("numpy", "ns_step/256", lambda: np_step(w_h), repeats=500, warmup=5)
    bench("jax", "ns_step/256", lambda: jx_step(w_h_j).block_until_ready(), repeats=500, warmup=5)

    a, b = w_h, w_h_j
    for _ in range(10):
        a, b = np_step(a), jx_step(b)
    wa, wb = np.fft.irfft2(a, s=(N, N)), np.fft.irfft2(np.asarray(b), s=(N, N))
    rel = np.max(np.abs(wa - wb)) / np.max(np.abs(wa))
    print(f"check bench=ns_step/256 steps=10 numpy_vs_jax_max_rel_diff={rel:.3e}", flush=True)


if __name__ == "__main__":
    main()
