"""Tidy tables of the gradient-noise estimates (results/tidy/noise_*.csv): one row per
(point, sampler, β, k) of every noise result file (igrm.noise.estimate_noise's arrays and
attrs), with the slides' factors and the k → ∞ limits beside the measured ratios
(docs/noise.md §2, §3)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..noise_theory import igrm_ratio_limits

Result = tuple[Mapping[str, Any], Mapping[str, Any]]


def _attrs_dict(attrs):
    return {k: (json.loads(v) if k == "config" and isinstance(v, str) else v) for k, v in attrs.items()}


#: grid-shaped arrays (β×k) that carry no sampler axis
_UNSTACKED = ("theory_iid", "theory_epoch", "betas", "ks")


def _views(arrays: Mapping[str, Any]):
    """The arrays of a noise result, and those of its trajectory estimate (``trajectory/*``,
    docs/noise.md §10) as one more sampler entry, ``iid_trajectory``, on its own (β, k) grid,
    with a sampler axis added and its drift per β."""
    yield arrays, None
    tr = {k[len("trajectory/") :]: np.asarray(v) for k, v in arrays.items() if k.startswith("trajectory/")}
    if tr:
        view = {k: (v if k in _UNSTACKED else v[None]) for k, v in tr.items()}
        view["samplers"] = np.array(["iid_trajectory"])
        yield view, ({"drift_rel": tr["drift_rel"], "h": float(tr["h"])} if "drift_rel" in tr else {})


def _cells(results: Iterable[Result]):
    """(arrays, s, i, j, β, base columns) of every (point, sampler, β, k)."""
    for full, attrs in results:
        attrs = _attrs_dict(attrs)
        for arrays, traj in _views(full):
            yield from _view_cells(arrays, attrs, traj)


def _view_cells(arrays, attrs, traj):
    samplers = [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(arrays["samplers"])]
    betas, ks = np.asarray(arrays["betas"], float), np.asarray(arrays["ks"], int)
    for si, s in enumerate(samplers):
        for i, b in enumerate(betas):
            for j, k in enumerate(ks):
                base = {
                    "point": attrs.get("point", ""),
                    "model": attrs.get("model", ""),
                    "sampler": s,
                    "batchnorm": "eval" if s.endswith("_bneval") else "train",
                    "beta": float(b),
                    "k": int(k),
                    "batch_size": attrs.get("batch_size"),
                    "n_examples": attrs.get("n_examples"),
                    "n_grad_evals": int(np.asarray(arrays["n_grad_evals"])[si]),
                    "n_windows": int(np.asarray(arrays["n_windows"])[si, j]),
                    # along a trajectory: mean ‖θ_end − θ_0‖/‖θ_0‖ of the runs at this β, and h
                    "drift_rel": float(traj["drift_rel"][i]) if traj else np.nan,
                    "traj_h": traj["h"] if traj else np.nan,
                }
                yield arrays, si, i, j, b, base


def _ival(a, name, si, i, j, scale=1.0):
    """name, _lo, _hi, _lo_simul, _hi_simul of one cell, times ``scale``."""
    return {
        suffix.lstrip("_") or "value": scale * a[name + suffix][si, i, j]
        for suffix in ("", "_lo", "_hi", "_lo_simul", "_hi_simul")
    }


def _mixed(a, si, i, j) -> dict[str, Any]:
    """The BatchNorm columns of one cell (docs/noise.md §8; NaN for the iid sampler): batchnorm
    (train, or eval for the control entry epoch_bneval), the additive share ρ with its
    interval, R with the mixed-model estimators (mix_*), measured/corrected theory (bn_*),
    the corrected theory ρ̂ R_epoch + (1 − ρ̂) R_iid, its per-cell z and joint p."""
    sh = {k: float(np.asarray(a["additive_share" + k])[si]) for k in ("", "_lo", "_hi")}
    mix, bn = _ival(a, "ratio_mix", si, i, j), _ival(a, "ratio_bn", si, i, j)
    return {
        "additive_share": sh[""],
        "share_lo": sh["_lo"],
        "share_hi": sh["_hi"],
        **{("ratio_mix" if k == "value" else f"mix_{k}"): v for k, v in mix.items()},
        **{("ratio_bn" if k == "value" else f"bn_{k}"): v for k, v in bn.items()},
        "theory_bn": a["theory_bn"][si, i, j],
        "z_bn": a["bn_z"][si, i, j],
        "p_joint_bn": float(np.asarray(a["bn_p_joint"])[si]),
    }


def noise_ratios(results: Iterable[Result]) -> pd.DataFrame:
    """tr Cov((1−β)∇G_k)/tr Cov(g) (Obs-1, docs/noise.md §2): measured with Fieller intervals
    (per cell and simultaneous over the cells, §4.3), the per-cell t statistic z of
    (measured − theory) and the joint sign-flip p of the file's sampler, the exact theory
    (the sampler's, iid, epoch) and the slides' (1−β)/(1+β)."""
    rows = []
    for a, si, i, j, b, base in _cells(results):
        iv = _ival(a, "ratio", si, i, j)
        rows.append(
            {
                **base,
                "ratio": iv["value"],
                "lo": iv["lo"],
                "hi": iv["hi"],
                "lo_simul": iv["lo_simul"],
                "hi_simul": iv["hi_simul"],
                "z": a["ratio_z"][si, i, j],
                "p_joint": float(np.asarray(a["ratio_p_joint"])[si]),
                "n_groups": int(np.asarray(a["group_trace"]).shape[-1]),
                "theory": a["theory"][si, i, j],
                "theory_iid": a["theory_iid"][i, j],
                "theory_epoch": a["theory_epoch"][i, j],
                "slides": (1 - b) / (1 + b),
                **_mixed(a, si, i, j),
            }
        )
    return pd.DataFrame(rows)


def noise_regularisation(results: Iterable[Result]) -> pd.DataFrame:
    """E[IGRM_s]/E[IGR_s] (Obs-2, docs/noise.md §3): measured with Fieller intervals, the exact
    theory at the measured ‖m‖², trΣ and the interval of measured/theory (``rel_*``, 1 under
    (T37)), per-cell z and joint p, the slides' 1/(1−β), the force-normalised ratio ×(1−β)
    and the k → ∞ limits (§3.2)."""
    rows = []
    for a, si, i, j, b, base in _cells(results):
        lim = igrm_ratio_limits(b)
        iv = _ival(a, "igrm_over_igr", si, i, j)
        fv = _ival(a, "igrm_over_igr", si, i, j, scale=1 - b)
        rv = _ival(a, "igrm_vs_theory", si, i, j)
        rows.append(
            {
                **base,
                "igrm_over_igr": iv["value"],
                "lo": iv["lo"],
                "hi": iv["hi"],
                "lo_simul": iv["lo_simul"],
                "hi_simul": iv["hi_simul"],
                "theory": a["igrm_theory"][si, i, j],
                "rel": rv["value"],
                "rel_lo": rv["lo"],
                "rel_hi": rv["hi"],
                "rel_lo_simul": rv["lo_simul"],
                "rel_hi_simul": rv["hi_simul"],
                "z": a["igrm_z"][si, i, j],
                "p_joint": float(np.asarray(a["igrm_p_joint"])[si]),
                "n_groups": int(np.asarray(a["group_trace"]).shape[-1]),
                "slides": 1 / (1 - b),
                **{f"force_normalised{'' if k == 'value' else '_' + k}": v for k, v in fv.items()},
                "limit_raw_noise": float(lim["raw_noise"]),
                "limit_raw_mean": float(lim["raw_mean"]),
                "mean_sq_norm": float(np.asarray(a["mean_sq_norm"])[si]),
                "trace_cov": float(np.asarray(a["trace_cov"])[si]),
                "e_igrm": a["e_igrm"][si, i, j],
                "e_igr": float(np.asarray(a["e_igr"])[si]),
            }
        )
    return pd.DataFrame(rows)


def noise_calibration(result: Result) -> pd.DataFrame:
    """The simulated coverage (igrm.noise_calibration, docs/noise.md §4.4), one row per
    (sampler, β, k): per-cell coverage of the three intervals, and the sampler's
    simultaneous coverage and joint-test rejection rates."""
    full, attrs = result
    attrs = _attrs_dict(attrs)
    rows = []
    for a, traj in _views(full):
        if traj is None:
            rows += _calibration_rows(a, attrs, int(attrs["n_groups"]), int(attrs["block_len"]))
        else:  # the trajectory design (docs/noise.md §10)
            t = attrs["trajectory"] if isinstance(attrs["trajectory"], dict) else json.loads(attrs["trajectory"])
            rows += _calibration_rows(a, attrs, int(t["groups"]), max(t["ks"]) + 1)
    return pd.DataFrame(rows)


def _calibration_rows(a, attrs, n_groups: int, block_len: int) -> list[dict]:
    """The rows of one view (the fixed-point samplers, or the trajectory design of §10)."""
    if "replicates" not in a:
        a = {**a, "replicates": np.int64(attrs["replicates"])}
    samplers = [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(a["samplers"])]
    rows = []
    for si, s in enumerate(samplers):
        for i, b in enumerate(np.asarray(a["betas"], float)):
            for j, k in enumerate(np.asarray(a["ks"], int)):
                rows.append(
                    {
                        "sampler": s,
                        "beta": float(b),
                        "k": int(k),
                        "cover_ratio": a["cover_ratio"][si, i, j],
                        "cover_igrm": a["cover_igrm"][si, i, j],
                        "cover_igrm_theory": a["cover_igrm_theory"][si, i, j],
                        "bias_ratio": a["bias_ratio"][si, i, j],
                        "simul_ratio": float(a["simul_ratio"][si]),
                        "simul_igrm": float(a["simul_igrm"][si]),
                        "reject_ratio": float(a["reject_ratio"][si]),
                        "reject_igrm": float(a["reject_igrm"][si]),
                        "cover_bn": a["cover_bn"][si, i, j],
                        "simul_bn": float(a["simul_bn"][si]),
                        "cover_share": float(a["cover_share"][si]),
                        "replicates": int(a["replicates"]),
                        "ci_level": float(attrs["ci_level"]),
                        "n_groups": n_groups,
                        "block_len": block_len,
                    }
                )
    return rows
