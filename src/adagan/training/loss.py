"""StyleGAN2-ADA losses in six phases (paper §2-3; StyleGAN2 App. B for lazy regularization).

Gmain: non-saturating logistic loss softplus(-D(aug(G(z)))).
Greg:  path-length regularization on batch // pl_batch_shrink (the lazy phase, every pl_interval G steps).
Dmain: softplus(D(aug(G(z)))) + softplus(-D(aug(x))).
Dreg:  R1 = gamma/2 * ||d D(aug(x)) / d x||^2 on the un-augmented reals (the lazy phase, every r1_interval D steps).
Gboth / Dboth: main loss and regularizer in the same call, for non-lazy regularization (interval None or 0):
  Dboth scores the reals once and backpropagates softplus(-D(x)) + R1 together.
Every image D sees goes through the same augment pipe; `gain` carries the lazy regularization interval.
Every mapping call on the main latents updates `G.mapping.w_avg` (Gmain, Greg and the fakes of Dmain), the
style-mixing second mapping does not. Statistics are reported by name through `stats.report`, together at
the end of each phase call.

LeCam (Tseng et al., CVPR 2021, "Regularizing Generative Adversarial Networks under Limited Data";
`loss.lecam` > 0): Dmain (or Dboth) adds lecam * R_LC to D's loss, R_LC = E[relu(D(x) - a_F)^2] +
E[relu(a_R - D(G(z)))^2], where a_R and a_F are exponential moving averages (decay 0.99, zero-debiased as
Adam's moments) of D's batch-mean scores on the augmented reals and fakes of the same round, updated with
this round's means before the penalty is taken and kept out of the gradient. The batch means are summed
over processes, so every rank holds the same averages. With LeCam on, the fakes' backward waits for the
reals' pass (both means are needed first), so Dmain keeps D's graph of the fakes alive a little longer.
`Loss/D/loss` stays the logistic loss; R_LC and the averages are `Loss/lecam/penalty|ema_real|ema_fake`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from adagan.config import LossConfig
from adagan.training import stats

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")


class LeCam:
    """The running averages of LeCam regularization and its penalty (Tseng et al. 2021).

    `update(real_logits, gen_logits)` folds this round's batch means of D's scores into the EMAs; the
    averages are zero-debiased: ema = biased / (1 - decay^steps) with biased <- decay * biased + (1 - decay)
    * mean (TensorFlow's assign_moving_average(zero_debias=True), which the reference code uses).
    `penalty(real_logits, gen_logits)` is the per-sample pair (relu(D(x) - ema_fake)^2,
    relu(ema_real - D(G(z)))^2); R_LC is the sum of their means. all_reduce: an in-place sum over
    processes (None alone), so the means are those of the whole batch.
    """

    def __init__(self, decay: float = 0.99, device=None, all_reduce: Callable[[torch.Tensor], None] | None = None):
        self.decay = float(decay)
        self.all_reduce = all_reduce
        self.biased = torch.zeros([2], device=device)  # (real, fake), before debiasing
        self.steps = 0

    @property
    def ema(self) -> torch.Tensor:
        """[2]: the debiased (real, fake) averages; zeros before the first update."""
        return self.biased / (1 - self.decay**self.steps) if self.steps else self.biased.clone()

    def update(self, real_logits: torch.Tensor, gen_logits: torch.Tensor) -> None:
        sums = torch.stack([real_logits.detach().sum(), gen_logits.detach().sum(),
                            torch.tensor(float(real_logits.numel()), device=real_logits.device),
                            torch.tensor(float(gen_logits.numel()), device=gen_logits.device)]).float()
        if self.all_reduce is not None:
            self.all_reduce(sums)
        means = sums[:2] / sums[2:]
        self.biased.mul_(self.decay).add_(means.to(self.biased.device), alpha=1 - self.decay)
        self.steps += 1

    def penalty(self, real_logits: torch.Tensor, gen_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ema_real, ema_fake = self.ema.to(real_logits.device)
        return F.relu(real_logits - ema_fake).square(), F.relu(ema_real - gen_logits).square()

    def state_dict(self) -> dict:
        return {"lecam_biased": self.biased, "lecam_steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        if "lecam_biased" in state:
            self.biased.copy_(state["lecam_biased"])
            self.steps = int(state["lecam_steps"])


class StyleGAN2Loss:
    def __init__(self, G, D, augment_pipe=None, cfg: LossConfig = LossConfig(), autocast_dtype=None,
                 all_reduce: Callable[[torch.Tensor], None] | None = None):
        self.G, self.D = G, D
        self.augment_pipe = augment_pipe
        self.cfg = cfg
        self.autocast_dtype = autocast_dtype  # e.g. torch.bfloat16 on CUDA; None = off
        device = next(G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)
        # all_reduce: sums over processes (None alone); LeCam's batch means go through it.
        self.lecam = LeCam(cfg.lecam_decay, device, all_reduce) if cfg.lecam else None
        self._reports: list[tuple[str, torch.Tensor]] = []  # statistics of the phase running, reported at its end

    def state_dict(self) -> dict:
        """What a resume restores: the path-length running mean and, with LeCam on, its averages."""
        return {"pl_mean": self.pl_mean, **(self.lecam.state_dict() if self.lecam else {})}

    def load_state_dict(self, state: dict) -> None:
        if "pl_mean" in state:
            self.pl_mean.copy_(state["pl_mean"])
        if self.lecam is not None:
            self.lecam.load_state_dict(state)

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
        """Forward + backward of one phase on one (micro)batch; gradients accumulate in .grad.

        A regularizer whose weight is 0 (pl_weight, r1_gamma) is skipped, also inside Gboth/Dboth.
        """
        assert phase in PHASES, phase
        cfg = self.cfg
        do_Gmain = phase in ("Gmain", "Gboth")
        do_Gpl = phase in ("Greg", "Gboth") and cfg.pl_weight != 0
        do_Dmain = phase in ("Dmain", "Dboth")
        do_Dr1 = phase in ("Dreg", "Dboth") and cfg.r1_gamma != 0
        if do_Gmain:
            self._G_main(gen_z, gen_c, gain)
        if do_Gpl:
            self._G_path_length(gen_z, gen_c, gain)
        loss_Dgen, gen_logits = self._D_fake(gen_z, gen_c, gain, defer=self.lecam is not None) if do_Dmain \
            else (None, None)
        if do_Dmain or do_Dr1:
            self._D_real(real_img, real_c, gain, loss_Dgen, do_Dr1, gen_logits)
        for name, value in self._reports:  # the phase's statistics, in the order they were taken
            stats.report(name, value)
        self._reports.clear()

    def _report(self, name: str, value: torch.Tensor) -> None:
        self._reports.append((name, value.detach() if isinstance(value, torch.Tensor) else value))

    def _G_main(self, gen_z, gen_c, gain):
        gen_img, _ = self.run_G(gen_z, gen_c)
        gen_logits = self.run_D(gen_img, gen_c)
        self._report("Loss/scores/fake", gen_logits)
        self._report("Loss/signs/fake", gen_logits.sign())
        loss_G = F.softplus(-gen_logits)  # -log(sigmoid(D(G(z))))
        self._report("Loss/G/loss", loss_G)
        loss_G.mean().mul(gain).backward()

    def _G_path_length(self, gen_z, gen_c, gain):
        cfg = self.cfg
        batch = max(gen_z.shape[0] // cfg.pl_batch_shrink, 1)
        gen_img, gen_ws = self.run_G(gen_z[:batch], None if gen_c is None else gen_c[:batch])
        # Unit-variance noise per pixel scaled by 1/sqrt(H*W), so the length does not grow with resolution.
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        (pl_grads,) = torch.autograd.grad(outputs=(gen_img * pl_noise).sum(), inputs=gen_ws,
                                          create_graph=True, only_inputs=True)
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()  # [N]: mean over ws of the squared norm over w_dim
        # The target a = lerp(running mean, batch mean, decay) keeps its gradient through the batch mean (as the
        # official loss.py does; detaching it changes the gradient by ~1.4%); only the stored copy is detached.
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), cfg.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        self._report("Loss/pl_penalty", pl_penalty)
        loss_pl = pl_penalty * cfg.pl_weight
        self._report("Loss/G/reg", loss_pl)
        # gen_img[:, 0, 0, 0] * 0 keeps every synthesis parameter in the graph.
        (gen_img[:, 0, 0, 0] * 0 + loss_pl).mean().mul(gain).backward()

    def _D_fake(self, gen_z, gen_c, gain, defer: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(loss_Dgen, None) after its backward; defer: (loss_Dgen, gen_logits) with the graph kept, for the reals'
        pass to backpropagate (LeCam's penalty on the fakes needs the reals' batch mean first)."""
        with torch.no_grad():
            gen_img, _ = self.run_G(gen_z, gen_c)
        gen_logits = self.run_D(gen_img, gen_c)
        self._report("Loss/scores/fake", gen_logits)
        self._report("Loss/signs/fake", gen_logits.sign())
        loss_Dgen = F.softplus(gen_logits)  # -log(1 - sigmoid(D(G(z))))
        if defer:
            return loss_Dgen, gen_logits
        loss_Dgen.mean().mul(gain).backward()
        return loss_Dgen.detach(), None

    def _D_real(self, real_img, real_c, gain, loss_Dgen: torch.Tensor | None, do_r1: bool,
                gen_logits: torch.Tensor | None = None) -> None:
        """The reals' pass: softplus(-D(x)) when loss_Dgen is given (Dmain), R1 when do_r1; one D forward.
        gen_logits (LeCam on): the fakes' scores whose loss_Dgen and LeCam term go into this backward."""
        real = real_img.detach().requires_grad_(do_r1)
        real_logits = self.run_D(real, real_c)
        self._report("Loss/scores/real", real_logits)
        self._report("Loss/signs/real", real_logits.sign())
        loss = real_logits * 0  # keeps every D parameter in the graph when only R1 runs
        if loss_Dgen is not None:
            loss_Dreal = F.softplus(-real_logits)  # -log(sigmoid(D(x)))
            self._report("Loss/D/loss", loss_Dgen.detach() + loss_Dreal)
            loss = loss + loss_Dreal
        if gen_logits is not None:
            # Real and fake batches have the same size, so the mean of the per-sample sum is the sum of the means.
            assert gen_logits.shape == real_logits.shape, (gen_logits.shape, real_logits.shape)
            self.lecam.update(real_logits, gen_logits)
            pen_real, pen_fake = self.lecam.penalty(real_logits, gen_logits)
            ema_real, ema_fake = self.lecam.ema
            self._report("Loss/lecam/penalty", pen_real.mean() + pen_fake.mean())  # R_LC of this round
            self._report("Loss/lecam/ema_real", ema_real)
            self._report("Loss/lecam/ema_fake", ema_fake)
            loss = loss + loss_Dgen + (pen_real + pen_fake) * self.cfg.lecam
        if do_r1:
            (r1_grads,) = torch.autograd.grad(outputs=real_logits.sum(), inputs=real, create_graph=True,
                                              only_inputs=True)
            r1_penalty = r1_grads.square().sum([1, 2, 3])
            loss_r1 = r1_penalty * (self.cfg.r1_gamma / 2)
            self._report("Loss/r1_penalty", r1_penalty)
            self._report("Loss/D/reg", loss_r1)
            loss = loss + loss_r1
        loss.mean().mul(gain).backward()
