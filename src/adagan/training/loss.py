"""StyleGAN2-ADA losses in four phases (SPEC §5).

Gmain: non-saturating logistic loss softplus(-D(aug(G(z)))).
Greg:  path-length regularization on batch // pl_batch_shrink, every pl_interval G steps.
Dmain: softplus(D(aug(G(z)))) + softplus(-D(aug(x))).
Dreg:  R1 = gamma/2 * ||d D(aug(x)) / d x||^2 on the un-augmented reals, every r1_interval D steps.
Every image D sees goes through the same augment pipe; `gain` carries the lazy
regularization interval. Every mapping call on the main latents updates `G.mapping.w_avg`
(Gmain, Greg and the fakes of Dmain, as the official mapping does in training mode); the
style-mixing second mapping does not. Statistics are reported by name through `stats.report`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from adagan.config import LossConfig
from adagan.training import stats

PHASES = ("Gmain", "Greg", "Dmain", "Dreg")


class StyleGAN2Loss:
    def __init__(self, G, D, augment_pipe=None, cfg: LossConfig = LossConfig(), autocast_dtype=None):
        self.G, self.D = G, D
        self.augment_pipe = augment_pipe
        self.cfg = cfg
        self.autocast_dtype = autocast_dtype  # e.g. torch.bfloat16 on CUDA; None = off
        self.pl_mean = torch.zeros([], device=next(G.parameters()).device)

    def _autocast(self, device):
        enabled = self.autocast_dtype is not None
        return torch.autocast(device_type=device.type, dtype=self.autocast_dtype or torch.bfloat16, enabled=enabled)

    def run_G(self, z: torch.Tensor, c: torch.Tensor | None, update_emas: bool = True):
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.cfg.style_mixing_prob > 0:
            # With probability p, ws from a random cutoff in [1, num_ws) onward come from a second z.
            num_ws = ws.shape[1]
            cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws)
            mix = torch.rand([], device=ws.device) < self.cfg.style_mixing_prob
            cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
            ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
            keep = torch.arange(num_ws, device=ws.device)[None, :, None] < cutoff
            ws = torch.where(keep, ws, ws2)
        with self._autocast(ws.device):
            img = self.G.synthesis(ws)
        return img.float(), ws

    def run_D(self, img: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with self._autocast(img.device):
            logits = self.D(img, c)
        return logits.float()

    def accumulate_gradients(self, phase: str, real_img: torch.Tensor, real_c: torch.Tensor | None,
                             gen_z: torch.Tensor, gen_c: torch.Tensor | None, gain: float) -> None:
        """Forward + backward of one phase on one (micro)batch; gradients accumulate in .grad."""
        assert phase in PHASES, phase
        cfg = self.cfg
        if phase == "Greg" and cfg.pl_weight == 0:
            return
        if phase == "Dreg" and cfg.r1_gamma == 0:
            return

        if phase == "Gmain":
            gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            stats.report("Loss/scores/fake", gen_logits)
            stats.report("Loss/signs/fake", gen_logits.sign())
            loss_G = F.softplus(-gen_logits)  # -log(sigmoid(D(G(z))))
            stats.report("Loss/G/loss", loss_G)
            loss_G.mean().mul(gain).backward()

        elif phase == "Greg":
            batch = max(gen_z.shape[0] // cfg.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:batch], None if gen_c is None else gen_c[:batch])
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            (pl_grads,) = torch.autograd.grad(outputs=(gen_img * pl_noise).sum(), inputs=gen_ws,
                                              create_graph=True, only_inputs=True)
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()  # [N]: mean over ws of the squared norm over w_dim
            # The target a = lerp(running mean, batch mean, decay) keeps its gradient through the batch mean (as
            # the official loss.py does; detaching it changes the gradient by ~1.4%); only the stored copy is
            # detached.
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), cfg.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            stats.report("Loss/pl_penalty", pl_penalty)
            loss_pl = pl_penalty * cfg.pl_weight
            stats.report("Loss/G/reg", loss_pl)
            # gen_img[:, 0, 0, 0] * 0 keeps every synthesis parameter in the graph.
            (gen_img[:, 0, 0, 0] * 0 + loss_pl).mean().mul(gain).backward()

        elif phase == "Dmain":
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c)
            stats.report("Loss/scores/fake", gen_logits)
            stats.report("Loss/signs/fake", gen_logits.sign())
            loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(D(G(z))))
            loss_Dgen.mean().mul(gain).backward()

            real_logits = self.run_D(real_img.detach(), real_c)
            stats.report("Loss/scores/real", real_logits)
            stats.report("Loss/signs/real", real_logits.sign())
            loss_Dreal = F.softplus(-real_logits)  # -log(sigmoid(D(x)))
            stats.report("Loss/D/loss", loss_Dgen + loss_Dreal)
            loss_Dreal.mean().mul(gain).backward()

        else:  # Dreg
            real = real_img.detach().requires_grad_(True)
            real_logits = self.run_D(real, real_c)
            stats.report("Loss/scores/real", real_logits)
            stats.report("Loss/signs/real", real_logits.sign())
            (r1_grads,) = torch.autograd.grad(outputs=real_logits.sum(), inputs=real, create_graph=True,
                                              only_inputs=True)
            r1_penalty = r1_grads.square().sum([1, 2, 3])
            loss_r1 = r1_penalty * (cfg.r1_gamma / 2)
            stats.report("Loss/r1_penalty", r1_penalty)
            stats.report("Loss/D/reg", loss_r1)
            (real_logits * 0 + loss_r1).mean().mul(gain).backward()
