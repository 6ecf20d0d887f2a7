"""Metrics: FID, KID, precision/recall, Inception score and PPL (docs/metrics.md).

Library entry points: `evaluate_snapshot` (training loop, `adagan metrics`), `compute_metrics`
and the per-metric functions in `fid`, `kid`, `pr`, `ppl`, `inception_score`; detector weights
are resolved and fetched by `adagan.metrics.weights` (`adagan weights fetch`).
"""

from adagan.metrics.evaluate import (
    KNOWN,
    MetricSpec,
    compare_datasets,
    compute_metrics,
    evaluate_snapshot,
    parse_metric,
    parse_metrics,
)
from adagan.metrics.fid import fid_from_features, frechet_distance
from adagan.metrics.kid import kid_from_features
from adagan.metrics.pr import compute_pr, precision_recall

__all__ = ["KNOWN", "MetricSpec", "compare_datasets", "compute_metrics", "compute_pr", "evaluate_snapshot",
           "fid_from_features", "frechet_distance", "kid_from_features", "parse_metric",
           "parse_metrics", "precision_recall"]
