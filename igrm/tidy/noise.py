"""Tidy tables of the gradient-noise estimates (results/tidy/noise_*.csv): one row per
(point, sampler, β, k) of every noise result file (igrm.noise.estimate_noise's arrays and
attrs), with the slides' factors and the k → ∞ limits beside the measured ratios
(docs/noise.md §2, §3)."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..noise_theory import igrm_ratio_limits

Result = tuple[Mapping[str, Any], Mapping[str, Any]]


def _attrs_dict(attrs):
    return {k: (json.loads(v) if k == "config" and isinstance(v, str) else v) for k, v in attrs.items()}


def _cells(results: Iterable[Result]):
    """(arrays, s, i, j, β, base columns) of every (point, sampler, β, k)."""
    for arrays, attrs in results:
        attrs = _attrs_dict(attrs)
        samplers = [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(arrays["samplers"])]
        betas, ks = np.asarray(arrays["betas"], float), np.asarray(arrays["ks"], int)
        for si, s in enumerate(samplers):
            for i, b in enumerate(betas):
                for j, k in enumerate(ks):
                    base = {"point": attrs.get("point", ""), "model": attrs.get("model", ""), "sampler": s,
                            "beta": float(b), "k": int(k), "batch_size": attrs.get("batch_size"),
                            "n_examples": attrs.get("n_examples"),
                            "n_grad_evals": int(np.asarray(arrays["n_grad_evals"])[si]),
                            "n_windows": int(np.asarray(arrays["n_windows"])[si, j])}
                    yield arrays, si, i, j, b, base


def noise_ratios(results: Iterable[Result]) -> pd.DataFrame:
    """tr Cov((1−β)∇G_k)/tr Cov(g) (Obs-1, docs/noise.md §2): measured with CI and z,
    exact theory (the sampler's, iid, epoch) and the slides' (1−β)/(1+β)."""
    rows = []
    for a, si, i, j, b, base in _cells(results):
        rows.append({**base, "ratio": a["ratio"][si, i, j], "lo": a["ratio_lo"][si, i, j],
                     "hi": a["ratio_hi"][si, i, j], "z": a["ratio_z"][si, i, j],
                     "theory": a["theory"][si, i, j],
                     "theory_iid": a["theory_iid"][i, j],
                     "theory_epoch": a["theory_epoch"][i, j],
                     "slides": (1 - b) / (1 + b)})
    return pd.DataFrame(rows)


def noise_regularisation(results: Iterable[Result]) -> pd.DataFrame:
    """E[IGRM_s]/E[IGR_s] (Obs-2, docs/noise.md §3): measured with CI, exact theory and the
    CI of (measured − theory), the slides' 1/(1−β), the force-normalised ratio ×(1−β) and
    the k → ∞ limits (§3.2)."""
    rows = []
    for a, si, i, j, b, base in _cells(results):
        lim = igrm_ratio_limits(b)
        rows.append({**base, "igrm_over_igr": a["igrm_over_igr"][si, i, j],
                     "lo": a["igrm_over_igr_lo"][si, i, j], "hi": a["igrm_over_igr_hi"][si, i, j],
                     "theory": a["igrm_theory"][si, i, j],
                     "theory_lo": a["igrm_theory_lo"][si, i, j],
                     "theory_hi": a["igrm_theory_hi"][si, i, j],
                     "diff_lo": a["igrm_diff_lo"][si, i, j], "diff_hi": a["igrm_diff_hi"][si, i, j],
                     "slides": 1 / (1 - b),
                     "force_normalised": (1 - b) * a["igrm_over_igr"][si, i, j],
                     "force_normalised_lo": (1 - b) * a["igrm_over_igr_lo"][si, i, j],
                     "force_normalised_hi": (1 - b) * a["igrm_over_igr_hi"][si, i, j],
                     "limit_raw_noise": float(lim["raw_noise"]), "limit_raw_mean": float(lim["raw_mean"]),
                     "mean_sq_norm": float(np.asarray(a["mean_sq_norm"])[si]),
                     "trace_cov": float(np.asarray(a["trace_cov"])[si]),
                     "e_igrm": a["e_igrm"][si, i, j],
                     "e_igr": float(np.asarray(a["e_igr"])[si])})
    return pd.DataFrame(rows)
