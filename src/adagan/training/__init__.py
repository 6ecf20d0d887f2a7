"""Training: the StyleGAN2-ADA losses, the training loop and what it needs around it.

`loss` (the phases of Karras et al. 2020 / StyleGAN2 App. B), `loop` (the driver), `checkpoint`
(exact resume), `run` (run directories and process launch), `distributed` (the only module that
touches torch.distributed) and `stats` (statistics reported by name). See docs/code.md.
"""
