"""PyTorch peer of fieldflow's FNO benches (`cargo bench --bench fno`): the same network as
`src/model/fno.rs`, a complete training step and Heun-20 sampling, on the CPU with 2 threads.

Network (fieldflow's `Fno`, default options):
    e   = GELU(W2 GELU(W1 phi(t) + b1) + b2),  phi(t) = (sin w_j t, cos w_j t), w_j = 1000^(j/15), 16 freqs
    h0  = P [x, sin 2pi x, cos 2pi x, sin 2pi y, cos 2pi y] + L_t e           (periodic grid features)
    v_l = (K_l h_l + W_l h_l) * (1 + gamma_l(e)) + beta_l(e),  h_{l+1} = GELU(v_l) (l < L-1)
    out = Q2 GELU(Q1 h_L)
K_l: spectral convolution on the modes ky = -m1 .. m1-1, kx = 0 .. m2-1 (rfft2 / irfft2, forward
normalisation), complex weights per mode.

Training step (bench ids fno_train_step/b16_n64_w32 and /b16_n64_w24): white-noise sources
x0 ~ N(0, 1), t ~ U[0, 1), CondOT path x_t = t x1 + (1 - t) x0 with target x1 - x0, MSE loss,
backward, global gradient-norm clipping to 1, AdamW (lr 1e-4, betas (0.9, 0.999), eps 1e-8, no
weight decay), EMA (decay 0.999) of the weights. Sampling (fno_sample/heun20_b64_n64_w24): 20 Heun
steps (40 evaluations) of 64 fields of 64^2 from white noise, width 24, projection 64, no grad.

    python benches/peers/fno_train.py            # prints one line per bench (median / min ms)
"""
import argparse
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import bench  # noqa: E402


class TimeEmbedding(nn.Module):
    def __init__(self, dim=64, frequencies=16, max_frequency=1000.0):
        super().__init__()
        n = frequencies
        omega = torch.tensor([max_frequency ** (j / (n - 1)) for j in range(n)], dtype=torch.float32)
        self.register_buffer("omega", omega[None, :])
        self.hidden = nn.Linear(2 * n, dim)
        self.output = nn.Linear(dim, dim)

    def forward(self, t):
        a = t[:, None] * self.omega
        phi = torch.cat([torch.sin(a), torch.cos(a)], dim=1)
        return self.output(nn.functional.gelu(self.hidden(phi)))


class SpectralConv2d(nn.Module):
    def __init__(self, ci, co, m1, m2):
        super().__init__()
        self.m1, self.m2 = m1, m2
        bound = 1.0 / math.sqrt(2 * ci)
        self.weight = nn.Parameter(torch.empty(ci, co, 2 * m1, m2, dtype=torch.cfloat).uniform_(-bound, bound))

    def forward(self, x):
        b, _, h, w = x.shape
        m1, m2 = self.m1, self.m2
        xf = torch.fft.rfft2(x, norm="forward")
        modes = torch.cat([xf[:, :, :m1, :m2], xf[:, :, h - m1:, :m2]], dim=2)
        mixed = torch.einsum("bixy,ioxy->boxy", modes, self.weight)
        out = torch.zeros(b, self.weight.shape[1], h, w // 2 + 1, dtype=torch.cfloat)
        out[:, :, :m1, :m2] = mixed[:, :, :m1]
        out[:, :, h - m1:, :m2] = mixed[:, :, m1:]
        return torch.fft.irfft2(out, s=(h, w), norm="forward")


class Pointwise(nn.Module):
    """1x1 channel mixing, channels first."""

    def __init__(self, ci, co):
        super().__init__()
        self.conv = nn.Conv2d(ci, co, 1)

    def forward(self, x):
        return self.conv(x)


class Fno(nn.Module):
    def __init__(self, channels=2, width=32, modes=(12, 12), layers=4, projection=128, emb=64):
        super().__init__()
        self.width = width
        self.embedding = TimeEmbedding(emb)
        self.lift = Pointwise(channels + 4, width)
        self.lift_time = nn.Linear(emb, width, bias=False)
        self.spectral = nn.ModuleList([SpectralConv2d(width, width, *modes) for _ in range(layers)])
        self.pointwise = nn.ModuleList([Pointwise(width, width) for _ in range(layers)])
        self.film = nn.ModuleList([nn.Linear(emb, 2 * width) for _ in range(layers)])
        self.project_hidden = Pointwise(width, projection)
        self.project_out = Pointwise(projection, channels)
        self._grid = {}

    def grid(self, h, w):
        if (h, w) not in self._grid:
            y = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w) / h
            x = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w) / w
            tau = 2 * math.pi
            g = torch.stack([torch.sin(tau * x), torch.cos(tau * x), torch.sin(tau * y), torch.cos(tau * y)])
            self._grid[(h, w)] = g[None]
        return self._grid[(h, w)]

    def forward(self, x, t):
        b, _, h, w = x.shape
        e = nn.functional.gelu(self.embedding(t))
        inp = torch.cat([x, self.grid(h, w).expand(b, -1, -1, -1)], dim=1)
        z = self.lift(inp) + self.lift_time(e)[:, :, None, None]
        last = len(self.spectral) - 1
        for l, (k, pw, film) in enumerate(zip(self.spectral, self.pointwise, self.film)):
            v = k(z) + pw(z)
            gb = film(e)
            gamma, beta = gb[:, : self.width, None, None], gb[:, self.width:, None, None]
            v = v * (1 + gamma) + beta
            z = nn.functional.gelu(v) if l < last else v
        return self.project_out(nn.functional.gelu(self.project_hidden(z)))


class TrainRun:
    """One run of training steps: sources, path, forward, loss, backward, clipping, AdamW, EMA."""

    def __init__(self, width, projection, batch=16, n=64, seed=0):
        torch.manual_seed(seed)
        self.model = Fno(width=width, projection=projection)
        self.ema = [p.detach().clone() for p in self.model.parameters()]
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
                                     weight_decay=0.0)
        self.x1 = torch.randn(batch, 2, n, n)
        self.updates = 0

    def step(self):
        x1 = self.x1
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0])
        tt = t[:, None, None, None]
        xt = tt * x1 + (1 - tt) * x0
        target = x1 - x0
        self.opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(self.model(xt, t), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        beta = min(0.999, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.model.parameters()], 1 - beta)
        self.updates += 1
        return loss.item()


def heun(model, x, steps):
    dt = 1.0 / steps
    b = x.shape[0]
    with torch.no_grad():
        for s in range(steps):
            t = s * dt
            k1 = model(x, torch.full((b,), t))
            k2 = model(x + dt * k1, torch.full((b,), t + dt))
            x = x + 0.5 * dt * (k1 + k2)
    return x


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per size")
    parser.add_argument("--sample-runs", type=int, default=5, help="timed Heun-20 samplings")
    parser.add_argument("--only", choices=["train", "sample"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}", flush=True)
    if args.only in (None, "train"):
        for bench_id, width, projection in [("b16_n64_w32", 32, 128), ("b16_n64_w24", 24, 64)]:
            run = TrainRun(width, projection)
            nparams = sum(p.numel() * (2 if p.is_complex() else 1) for p in run.model.parameters())
            bench("torch", f"fno_train_step/{bench_id}", run.step, args.steps, warmup=3,
                  extra=f"params={nparams} last_loss={run.step():.4f}")
    if args.only in (None, "sample"):
        torch.manual_seed(1)
        model = Fno(width=24, projection=64).eval()
        x0 = torch.randn(64, 2, 64, 64)
        out = {}

        def sample():
            out["x"] = heun(model, x0, 20)

        bench("torch", "fno_sample/heun20_b64_n64_w24", sample, args.sample_runs, warmup=1)
        print(f"check sample finite={bool(torch.isfinite(out['x']).all())} rms={out['x'].pow(2).mean().sqrt():.4f}")


if __name__ == "__main__":
    main()
