"""The official PPL names (NVIDIA's metric_main.py): ppl_zfull, ppl_wfull, ppl_zend, ppl2_wend, with their meaning."""

import numpy as np
import pytest
import torch

from adagan.errors import ConfigError
from adagan.metrics.evaluate import parse_metric
from adagan.metrics.ppl import compute_ppl, ppl_distances, slerp


class ShapeLPIPS:
    """Records the images it is given; features = the pixels, so distances are plain squared differences."""

    def __init__(self):
        self.shapes = []

    def features(self, img):
        self.shapes.append(tuple(img.shape))
        return img.flatten(1)


def test_official_names_and_their_meaning():
    # official metric_main.py: (space, sampling, crop)
    want = {"ppl_zfull": ("z", "full", True), "ppl_wfull": ("w", "full", True), "ppl_zend": ("z", "end", True),
            "ppl2_wend": ("w", "end", False)}
    for name, meaning in want.items():
        spec = parse_metric(name)
        assert (spec.kind, spec.num, spec.ppl) == ("ppl", 50000, meaning), name
    assert parse_metric("ppl1k_zfull").num == 1000 and parse_metric("ppl2_1k_wend").ppl == ("w", "end", False)
    # adagan's own ppl_wend keeps its meaning (no crop), which is the official ppl2_wend's
    assert parse_metric("ppl_wend").ppl == parse_metric("ppl2_wend").ppl
    with pytest.raises(ConfigError, match="unknown metric"):
        parse_metric("ppl2_zfull")  # no such official name


def test_slerp_stays_on_the_sphere_at_a_linear_angle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    torch.testing.assert_close(slerp(a, b, torch.zeros(5, 1)), an)
    torch.testing.assert_close(slerp(a, b, torch.ones(5, 1)), bn, atol=1e-5, rtol=1e-5)
    mid = slerp(a, b, torch.full([5, 1], 0.25))
    torch.testing.assert_close(mid.norm(dim=1), torch.ones(5))
    full = torch.acos((an * bn).sum(1).clamp(-1, 1))
    torch.testing.assert_close(torch.acos((an * mid).sum(1).clamp(-1, 1)), 0.25 * full, atol=1e-4, rtol=1e-4)


def test_variants_crop_sample_and_interpolate_as_named(mx):
    G = mx.tiny_generator()  # 16 px
    idx = np.arange(6)
    lp = ShapeLPIPS()
    end = ppl_distances(G, lp, idx, space="w", sampling="end", crop=False)
    crop = ppl_distances(G, lp, idx, space="w", sampling="end", crop=True)
    # the centre crop: rows 3/8..7/8, columns 2/8..6/8 of 16 px = 8 x 8
    assert lp.shapes == [(12, 3, 16, 16), (12, 3, 8, 8)]
    assert np.all(crop <= end + 1e-3) and not np.allclose(crop, end)  # a part of the same squared differences
    full = ppl_distances(G, lp, idx, space="w", sampling="full", crop=True)
    assert not np.allclose(full, crop)  # t is not 0
    # t and z are fixed per sample index: the same values in any batch split
    np.testing.assert_allclose(np.concatenate([ppl_distances(G, lp, idx[:2], sampling="full", crop=True),
                                               ppl_distances(G, lp, idx[2:], sampling="full", crop=True)]), full,
                               rtol=5e-3)  # LPIPS / eps^2 with eps 1e-4 magnifies float rounding
    z = ppl_distances(G, lp, idx, space="z", sampling="end", crop=True)
    assert np.all(np.isfinite(z)) and not np.allclose(z, crop)


def test_ppl2_wend_is_adagans_ppl_wend(mx):
    from adagan.metrics.lpips import LPIPSVGG16

    torch.manual_seed(0)
    lp = LPIPSVGG16().eval().requires_grad_(False)
    G = mx.tiny_generator()
    space, sampling, crop = parse_metric("ppl2_wend").ppl
    a = compute_ppl(G, lp, 6, batch_size=3, progress=False, space=space, sampling=sampling, crop=crop)
    assert a == compute_ppl(G, lp, 6, batch_size=3, progress=False)
    space, sampling, crop = parse_metric("ppl_zfull").ppl
    with pytest.raises(ConfigError, match="at least 32 px"):  # a 16 px image's centre crop is too small for LPIPS
        compute_ppl(G, lp, 6, progress=False, space=space, sampling=sampling, crop=crop)
    G32 = mx.tiny_generator(res=32)
    assert np.isfinite(compute_ppl(G32, lp, 4, batch_size=2, progress=False, space=space, sampling=sampling,
                                   crop=crop))
