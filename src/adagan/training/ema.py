"""The generator's exponential moving average G_ema (Karras et al. 2020, appendix D; StyleGAN2 App. B).

Half-life `ema_kimg` thousand images; with a ramp-up ratio the half-life is at most cur_nimg * ramp, so
early, fast-changing weights are not averaged over images that were never shown. Buffers (w_avg, the
const noise) are copied as they are.
"""

from __future__ import annotations

import torch


def ema_beta(cur_nimg: int, batch: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """The decay for one iteration of `batch` images: 0.5 ** (batch / half-life in images)."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema <- G + beta * (G_ema - G) for parameters; buffers copied from G."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)
