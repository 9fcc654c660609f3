"""Leray projection of a batch of 64 random velocity fields (64, 2, 256, 256) on [0, 2pi)^2.

P u = u - k (k . u_h) / |k|^2 in Fourier space (rfft2 over the last two axes, vectorised over the
batch), i.e. the divergence-free part of u. fieldflow conventions: channels (u, v) = (x, y)
components, arrays [.., y, x]; the derivative multipliers zero the Nyquist modes and the k = 0 (mean
flow) mode is left untouched. Float64. numpy and JAX (jit) implementations; prints one timing line
each and the output's spectral divergence max|k.u_h| / max(|k| |u_h|), which should be round-off.
Rust counterpart: criterion bench `leray/64x256` (fieldflow-pde).
"""
import numpy as np
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

from _bench import bench  # noqa: E402

B, N = 64, 256


def multipliers(n=N):
    """Wavenumbers on [0, 2pi) (integers) with the Nyquist modes zeroed, and 1/|k|^2 (0 at k = 0)."""
    ky = np.fft.fftfreq(n, 1.0 / n)[:, None]
    kx = np.fft.rfftfreq(n, 1.0 / n)[None, :]
    ky = np.where(np.abs(ky) == n // 2, 0.0, ky) * np.ones_like(kx)
    kx = np.where(kx == n // 2, 0.0, kx) * np.ones_like(ky)
    k2 = kx**2 + ky**2
    inv_k2 = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    return kx, ky, inv_k2


def make_leray(xp):
    kx, ky, inv_k2 = (xp.asarray(a) for a in multipliers())

    def leray(u):
        uh = xp.fft.rfft2(u)                          # (B, 2, N, N//2+1)
        div = (kx * uh[:, 0] + ky * uh[:, 1]) * inv_k2
        ph = xp.stack([uh[:, 0] - kx * div, uh[:, 1] - ky * div], axis=1)
        return xp.fft.irfft2(ph, s=(N, N))

    return leray


def spectral_divergence(p):
    kx, ky, _ = multipliers()
    ph = np.fft.rfft2(p)
    div = np.abs(kx * ph[:, 0] + ky * ph[:, 1])
    scale = np.sqrt(kx**2 + ky**2) * np.sqrt(np.abs(ph[:, 0]) ** 2 + np.abs(ph[:, 1]) ** 2)
    return div.max() / scale.max()


def main():
    u = np.random.default_rng(0).standard_normal((B, 2, N, N))
    np_leray = make_leray(np)
    jx_leray = jax.jit(make_leray(jnp))
    u_j = jax.device_put(u)

    bench("numpy", "leray/64x256", lambda: np_leray(u), repeats=30)
    bench("jax", "leray/64x256", lambda: jx_leray(u_j).block_until_ready(), repeats=30)

    p_np, p_jx = np_leray(u), np.asarray(jx_leray(u_j))
    mean_kept = np.max(np.abs(p_np.mean(axis=(-2, -1)) - u.mean(axis=(-2, -1))))
    print(f"check bench=leray/64x256 div_rel_numpy={spectral_divergence(p_np):.3e} "
          f"div_rel_jax={spectral_divergence(p_jx):.3e} mean_mode_change={mean_kept:.3e} "
          f"numpy_vs_jax_max_rel_diff={np.max(np.abs(p_np - p_jx)) / np.max(np.abs(p_np)):.3e}", flush=True)


if __name__ == "__main__":
    main()
