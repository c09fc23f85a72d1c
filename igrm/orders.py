"""Error orders of heavy-ball momentum against its modified flows (pipeline stages).

Stage functions take a plain config dict and return ``(arrays, attrs)`` for
:func:`igrm.io.write_h5`; ``tidy_orders`` turns one result into a long table,
``fit_slopes`` fits log(error) on log(h), ``order_claims`` makes claims rows and the
``plot_*`` functions draw the log-log figures.

Global error of a run of N = ⌊T/h⌋ steps against a flow x̃:
    e(h) = max_{k: t_k = kh ∈ window} ‖x_k − x̃(t_k)‖
with window "all" (0 ≤ t_k ≤ T) or "late" (t_burn ≤ t_k ≤ T). The derivations and the
expected slopes are in docs/modified_flows.md (equations M1–M13).

Comparisons (GD+M; each against flow (1) and flow (2), docs/theory.md (T5), (T6)):
    naive      heavy ball from rest (x_{−1} = x_0)       vs the flow from x_0
    manifold   x_{−1} on the slow manifold to O(h)  (M7)  vs the flow from x_0
    manifold2  x_{−1} on the slow manifold to O(h²) (M7)  vs the flow from x_0
    shifted    heavy ball from rest                       vs the flow from x_0 + rest offset (M4)
SGD+M (two-factor stream, docs/theory.md (T19), (T21)):
    sgdm                 discrete SGD+M from rest vs the piecewise SGD+M flow from x_0,
                         with and without its h/4 terms (RMS over sample streams)
    sgdm_deterministic   the same on the constant stream x_r ≡ 1, y_r ≡ 0.6, plus
                         flow (2) and flow (1) from x_0 (M12)
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from . import claims as _claims
from . import flows as F
from .problems import Problem, TwoFactor, make_problem

COMPARISONS = ("naive", "manifold", "manifold2", "shifted")
FLOWS = ("flow (1)", "flow (2)")
WINDOWS = ("all", "late")
SGDM_FLOWS = ("SGD+M flow", "SGD+M flow without h/4 terms")
DET_FLOWS = ("SGD+M flow", "SGD+M flow without h/4 terms", "flow (2)", "flow (1)")

#: the window each comparison is judged on: the shifted flow starts O(h) away from x_0
#: by construction, so its all-window error is O(h) at k = 0 (eq. M6); it is judged on
#: t ≥ t_burn, after the parasitic β^k transient has died out.
PRIMARY_WINDOW = {"naive": "all", "manifold": "all", "manifold2": "all", "shifted": "late",
                  "sgdm": "all", "sgdm_deterministic": "all"}

#: expected slopes (docs/modified_flows.md §5), by (comparison, flow, window)
EXPECTED = {
    ("naive", "flow (1)", "all"): 1, ("naive", "flow (2)", "all"): 1,
    ("naive", "flow (1)", "late"): 1, ("naive", "flow (2)", "late"): 1,
    ("manifold", "flow (1)", "all"): 1, ("manifold", "flow (2)", "all"): 2,
    ("manifold", "flow (1)", "late"): 1, ("manifold", "flow (2)", "late"): 2,
    ("manifold2", "flow (1)", "all"): 1, ("manifold2", "flow (2)", "all"): 2,
    ("manifold2", "flow (1)", "late"): 1, ("manifold2", "flow (2)", "late"): 2,
    ("shifted", "flow (1)", "all"): 1, ("shifted", "flow (2)", "all"): 1,
    ("shifted", "flow (1)", "late"): 1, ("shifted", "flow (2)", "late"): 2,
    ("sgdm", "SGD+M flow", "all"): 2, ("sgdm", "SGD+M flow without h/4 terms", "all"): 1,
    ("sgdm_deterministic", "SGD+M flow", "all"): 2,
    ("sgdm_deterministic", "SGD+M flow without h/4 terms", "all"): 1,
    ("sgdm_deterministic", "flow (2)", "all"): 1, ("sgdm_deterministic", "flow (1)", "all"): 1,
}

#: default configuration of one GD+M job (one problem, one β); see README of docs
GDM_DEFAULTS: dict[str, Any] = {
    "problem": "two_factor",
    "problem_params": {},
    "init": None,            # two_factor: [2.8, 3.4]; lstsq: {"seed": 1, "scale": 1.0}
    "beta": 0.9,
    # units "eps": ε = h L0/(1−β)², L0 = spectral radius of ∇²E(x_0); units "h": raw h
    "h_grid": {"min": 0.005, "max": 0.08, "num": 8, "units": "eps"},
    "T": None,               # two_factor: 0.5; lstsq: 2.0
    "t_burn": None,          # start of the "late" window; default 0.2 T
    "rtol": 1e-12,
    "atol": 1e-12,
    "check_factor": 100.0,   # reference check: rerun with rtol, atol × check_factor
}
DEFAULT_T = {"two_factor": 0.5, "lstsq": 2.0, "sigmoid": 1.0}
DEFAULT_INIT = {"two_factor": [2.8, 3.4], "sigmoid": [6.0, 2.0], "lstsq": {"seed": 1, "scale": 1.0}}

SGDM_DEFAULTS: dict[str, Any] = {
    "beta": 0.9,
    "init": [2.8, 3.4],
    "h_grid": {"min": 0.005, "max": 0.08, "num": 8, "units": "eps"},
    "T": 0.5,
    "streams": 16,
    "seed": 0,
    "x_mean": 1.0,
    "slope": 0.6,
    "x_noise": 0.3,
    "y_noise": 0.1,
    "substeps": 1,           # RK4 steps per interval; the check reruns with 2 × substeps
}


def _merge(defaults: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    for k, v in (cfg or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _init_point(problem: Problem, name: str, init) -> np.ndarray:
    if init is None:
        init = DEFAULT_INIT.get(name)
    if isinstance(init, Mapping):
        rng = np.random.default_rng(int(init.get("seed", 1)))
        return float(init.get("scale", 1.0)) * rng.standard_normal(problem.dim)
    x0 = np.asarray(init, dtype=np.float64)
    if x0.shape != (problem.dim,):
        raise ValueError(f"init must have {problem.dim} entries, got shape {x0.shape}")
    return x0


def spectral_radius(problem: Problem, x0) -> float:
    """L0 = max |eig ∇²E(x_0)|, the curvature scale of the ε units."""
    return float(np.abs(np.linalg.eigvalsh(problem.hess(np.asarray(x0, dtype=np.float64)))).max())


def h_values(h_grid: Mapping[str, Any], beta: float, L0: float) -> tuple[np.ndarray, np.ndarray]:
    """Geometric grid of ``num`` values in [min, max]; returns (h, ε) with ε = h L0/(1−β)².

    units "eps" (default): the grid is in ε, the small parameter of the modified-equation
    expansion of heavy ball (docs/modified_flows.md §1), so one grid fits every β and
    problem; units "h": the grid is in h directly.
    """
    g = np.geomspace(float(h_grid["min"]), float(h_grid["max"]), int(h_grid["num"]))
    units = h_grid.get("units", "eps")
    scale = (1.0 - beta) ** 2 / L0
    if units == "eps":
        return g * scale, g
    if units == "h":
        return g, g / scale
    raise ValueError(f"h_grid units must be 'eps' or 'h', got {units!r}")


def _n_steps(T: float, h: np.ndarray) -> np.ndarray:
    return np.floor(T / h * (1 + 1e-12)).astype(np.int64)


# --------------------------------------------------------------------------------------
# GD+M
# --------------------------------------------------------------------------------------


def gdm_error_orders(cfg: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of GD+M against flows (1) and (2) for four starts, over an h grid.

    Arrays: h, eps, n_steps (H,); x0 (d,); errors, errors_late, reference_error (C, F, H)
    with C = comparisons (naive, manifold, manifold2, shifted) and F = flows (flow (1),
    flow (2)); comparisons (C,), flows (F,) labels. ``reference_error`` is the largest
    difference between the DOP853 reference and a rerun at check_factor × looser
    tolerances, over the same points — an upper bound of the reference's own error.
    """
    t_start = time.perf_counter()
    c = _merge(GDM_DEFAULTS, cfg)
    name = c["problem"]
    problem = make_problem(name, **(c.get("problem_params") or {}))
    x0 = _init_point(problem, name, c.get("init"))
    beta = float(c["beta"])
    T = float(c["T"] if c.get("T") is not None else DEFAULT_T.get(name, 1.0))
    t_burn = float(c["t_burn"]) if c.get("t_burn") is not None else 0.2 * T
    L0 = spectral_radius(problem, x0)
    h, eps = h_values(c["h_grid"], beta, L0)
    Hn, d = len(h), len(x0)
    n = _n_steps(T, h)

    # discrete runs: from rest, slow manifold to O(h), to O(h²) (eq. M7)
    X0 = np.tile(x0, (3 * Hn, 1))
    Xp = np.concatenate([np.tile(x0, (Hn, 1)), F.slow_manifold_prev(problem, x0, beta, h, order=1),
                         F.slow_manifold_prev(problem, x0, beta, h, order=2)])
    X = F.heavy_ball(problem, X0, Xp, beta, np.tile(h, 3), np.tile(n, 3))
    t_hb = time.perf_counter()

    # reference flows, one stacked DOP853 system: flow (1) from x0; flow (2)_h from x0;
    # flow (1) and flow (2)_h from the shifted start x0 + rest offset (eq. M4)
    shifted = x0 + F.rest_offset(problem, x0, beta, h)
    lam = F.flow2_lambda(beta, h)
    starts = np.concatenate([x0[None], np.tile(x0, (Hn, 1)), shifted, shifted])
    lams = np.concatenate([[0.0], lam, np.zeros(Hn), lam])
    sol = F.solve_lanes(problem, starts, beta, lams, [T], rtol=c["rtol"], atol=c["atol"], dense_output=True)
    loose = F.solve_lanes(problem, starts, beta, lams, [T], rtol=c["rtol"] * c["check_factor"],
                          atol=c["atol"] * c["check_factor"], dense_output=True)
    t_ode = time.perf_counter()

    C, Fn = len(COMPARISONS), len(FLOWS)
    err = np.full((C, Fn, Hn), np.nan)
    err_late = np.full((C, Fn, Hn), np.nan)
    ref_err = np.full((C, Fn, Hn), np.nan)
    for j in range(Hn):
        t = np.arange(n[j] + 1) * h[j]
        late = t >= t_burn
        R = sol(t)
        Rl = loose(t)
        lanes_x0 = (0, 1 + j)                    # flow (1), flow (2)_h from x0
        lanes_sh = (1 + Hn + j, 1 + 2 * Hn + j)  # the same from the shifted start
        paths = {"naive": X[: n[j] + 1, j], "manifold": X[: n[j] + 1, Hn + j],
                 "manifold2": X[: n[j] + 1, 2 * Hn + j], "shifted": X[: n[j] + 1, j]}
        for ci, comp in enumerate(COMPARISONS):
            lanes = lanes_sh if comp == "shifted" else lanes_x0
            for fi, lane in enumerate(lanes):
                dist = np.linalg.norm(paths[comp] - R[:, lane], axis=-1)
                err[ci, fi, j] = _nanmax(dist)
                err_late[ci, fi, j] = _nanmax(dist[late])
                ref_err[ci, fi, j] = np.max(np.linalg.norm(R[:, lane] - Rl[:, lane], axis=-1))
    t_end = time.perf_counter()

    arrays = {"h": h, "eps": eps, "n_steps": n, "x0": x0, "errors": err, "errors_late": err_late,
              "reference_error": ref_err, "comparisons": np.array(COMPARISONS), "flows": np.array(FLOWS)}
    attrs = {"kind": "gdm", "problem": name, "beta": beta, "T": T, "t_burn": t_burn, "L0": L0,
             "rtol": c["rtol"], "atol": c["atol"], "check_factor": c["check_factor"],
             "reference_error_max": float(np.nanmax(ref_err)),
             "min_error": float(np.nanmin(np.concatenate([err.ravel(), err_late.ravel()]))),
             "nfev": int(sol.nfev), "runtime_s": t_end - t_start,
             "runtime_heavy_ball_s": t_hb - t_start, "runtime_ode_s": t_ode - t_hb,
             "runtime_eval_s": t_end - t_ode, "config": c}
    attrs["diverged"] = bool(not np.all(np.isfinite(err)))
    return arrays, attrs


def _nanmax(a) -> float:
    a = np.asarray(a)
    if a.size == 0:
        return math.nan
    if not np.all(np.isfinite(a)):
        return math.inf if np.any(np.isinf(a)) else math.nan
    return float(a.max())


# --------------------------------------------------------------------------------------
# SGD+M
# --------------------------------------------------------------------------------------


def sgdm_error_orders(cfg: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Global errors of SGD+M against the piecewise SGD+M flow, over an h grid.

    Samples: x_r = x_mean + x_noise·N(0,1), y_r = slope·x_r + y_noise·N(0,1), sample r at
    step r for every h, ``streams`` independent streams from ``seed``. Errors are
    max_{kh ≤ T} ‖x_k − x(t_k)‖ per stream; the deterministic stream x_r ≡ x_mean,
    y_r ≡ slope·x_mean is run alongside (against the SGD+M flow and, via the stationary
    coefficients (M12), flow (2) and flow (1)).

    Arrays: h, eps, n_steps (H,); err_full, err_noreg, check_full, check_noreg (S, H)
    (check_* = max difference of the RK flow at substeps vs 2·substeps: the reference
    error); det_err_full, det_err_noreg, det_err_flow2, det_err_flow1 (H,);
    det_check (4, H).
    """
    t_start = time.perf_counter()
    c = _merge(SGDM_DEFAULTS, cfg)
    beta = float(c["beta"])
    x0 = np.asarray(c["init"], dtype=np.float64)
    mean_problem = TwoFactor(x=float(c["x_mean"]), y=float(c["slope"]) * float(c["x_mean"]))
    L0 = spectral_radius(mean_problem, x0)
    h, eps = h_values(c["h_grid"], beta, L0)
    T = float(c["T"])
    n = _n_steps(T, h)
    N = int(n.max())
    S = int(c["streams"])
    rng = np.random.default_rng(int(c["seed"]))
    xs, ys = F.two_factor_stream(rng, S, N, x_noise=float(c["x_noise"]), y_noise=float(c["y_noise"]),
                                 x_mean=float(c["x_mean"]), slope=float(c["slope"]))
    xd = np.full((2, N), float(c["x_mean"]))
    yd = np.full((2, N), float(c["slope"]) * float(c["x_mean"]))
    xs = np.concatenate([xs, xd])
    ys = np.concatenate([ys, yd])
    stationary = np.zeros(S + 2, dtype=bool)
    stationary[-1] = True  # the constant stream with k → ∞ coefficients = flows (2)/(1), eq. M12
    out = F.sgdm_max_errors(x0, xs, ys, beta, h, n, substeps=int(c["substeps"]), stationary=stationary)
    t_end = time.perf_counter()

    arrays = {"h": h, "eps": eps, "n_steps": n, "x0": x0,
              "err_full": out["full"][:, :S].T, "err_noreg": out["noreg"][:, :S].T,
              "check_full": out["full_check"][:, :S].T, "check_noreg": out["noreg_check"][:, :S].T,
              "det_err_full": out["full"][:, S], "det_err_noreg": out["noreg"][:, S],
              "det_err_flow2": out["full"][:, S + 1], "det_err_flow1": out["noreg"][:, S + 1],
              "det_check": np.stack([out["full_check"][:, S], out["noreg_check"][:, S],
                                     out["full_check"][:, S + 1], out["noreg_check"][:, S + 1]])}
    checks = np.concatenate([out["full_check"].ravel(), out["noreg_check"].ravel()])
    errs = np.concatenate([out["full"].ravel(), out["noreg"].ravel()])
    attrs = {"kind": "sgdm", "problem": "two_factor", "beta": beta, "T": T, "L0": L0,
             "streams": S, "seed": int(c["seed"]), "substeps": int(c["substeps"]),
             "reference_error_max": float(np.nanmax(checks)), "min_error": float(np.nanmin(errs)),
             "diverged": bool(not np.all(np.isfinite(errs))),
             "runtime_s": t_end - t_start, "config": c}
    return arrays, attrs


# --------------------------------------------------------------------------------------
# tidy, fit, claims
# --------------------------------------------------------------------------------------

TIDY_COLUMNS = ["problem", "beta", "comparison", "flow", "window", "h", "eps", "error", "error_std",
                "n_streams", "reference_error"]


def _label(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def tidy_orders(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (comparison, flow, window, h) of a gdm or sgdm result.

    Columns: problem, beta, comparison, flow, window, h, eps, error, error_std (sgdm: std
    across streams of the per-stream error; NaN otherwise), n_streams, reference_error.
    For ``sgdm`` the error is the RMS over streams.
    """
    kind = _label(attrs.get("kind", "gdm" if "errors" in arrays else "sgdm"))
    problem = _label(attrs.get("problem", "two_factor"))
    beta = float(attrs["beta"])
    h = np.asarray(arrays["h"], dtype=np.float64)
    eps = np.asarray(arrays.get("eps", np.full(h.shape, np.nan)), dtype=np.float64)
    rows = []

    def add(comp, flow, window, err, std=None, ns=1, ref=None):
        for j in range(len(h)):
            rows.append({"problem": problem, "beta": beta, "comparison": comp, "flow": flow, "window": window,
                         "h": h[j], "eps": eps[j], "error": float(err[j]),
                         "error_std": math.nan if std is None else float(std[j]), "n_streams": ns,
                         "reference_error": math.nan if ref is None else float(ref[j])})

    if kind == "gdm":
        comps = [_label(v) for v in arrays["comparisons"]]
        flows = [_label(v) for v in arrays["flows"]]
        for ci, comp in enumerate(comps):
            for fi, flow in enumerate(flows):
                ref = arrays["reference_error"][ci, fi]
                add(comp, flow, "all", arrays["errors"][ci, fi], ref=ref)
                add(comp, flow, "late", arrays["errors_late"][ci, fi], ref=ref)
    elif kind == "sgdm":
        for flow, key, chk in ((SGDM_FLOWS[0], "err_full", "check_full"), (SGDM_FLOWS[1], "err_noreg", "check_noreg")):
            e = np.asarray(arrays[key], dtype=np.float64)  # (S, H)
            add("sgdm", flow, "all", np.sqrt(np.mean(e * e, axis=0)), std=e.std(axis=0, ddof=1) if len(e) > 1 else None,
                ns=e.shape[0], ref=np.max(arrays[chk], axis=0))
        for i, (flow, key) in enumerate(zip(DET_FLOWS, ("det_err_full", "det_err_noreg", "det_err_flow2", "det_err_flow1"))):
            add("sgdm_deterministic", flow, "all", arrays[key], ref=arrays["det_check"][i])
    else:
        raise ValueError(f"unknown result kind {kind!r}")
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def expected_slope(comparison: str, flow: str, window: str = "all") -> float:
    return float(EXPECTED.get((comparison, flow, window), math.nan))


def loglog_slope(h, err) -> tuple[float, float, int]:
    """Least-squares slope of log(err) on log(h) and its standard error (finite,
    positive points only); returns (slope, se, n_points)."""
    h = np.asarray(h, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    ok = np.isfinite(err) & (err > 0) & np.isfinite(h) & (h > 0)
    x, y = np.log(h[ok]), np.log(err[ok])
    n = int(ok.sum())
    if n < 2:
        return math.nan, math.nan, n
    xm = x - x.mean()
    sxx = float(xm @ xm)
    slope = float(xm @ (y - y.mean()) / sxx)
    if n < 3:
        return slope, math.nan, n
    resid = y - y.mean() - slope * xm
    se = math.sqrt(float(resid @ resid) / (n - 2) / sxx)
    return slope, se, n


SLOPE_COLUMNS = ["problem", "beta", "comparison", "flow", "window", "primary", "slope", "slope_se", "n_points",
                 "expected_slope", "h_min", "h_max", "min_error", "max_reference_error"]


def fit_slopes(df: pd.DataFrame) -> pd.DataFrame:
    """Slope of log(error) vs log(h) over the whole grid for every (problem, β,
    comparison, flow, window); ``primary`` marks the window the comparison is judged on."""
    rows = []
    for (problem, beta, comp, flow, window), g in df.groupby(["problem", "beta", "comparison", "flow", "window"],
                                                            sort=False):
        slope, se, n = loglog_slope(g["h"], g["error"])
        rows.append({"problem": problem, "beta": beta, "comparison": comp, "flow": flow, "window": window,
                     "primary": PRIMARY_WINDOW.get(comp) == window, "slope": slope, "slope_se": se, "n_points": n,
                     "expected_slope": expected_slope(comp, flow, window), "h_min": float(g["h"].min()),
                     "h_max": float(g["h"].max()), "min_error": float(g["error"].min()),
                     "max_reference_error": float(g["reference_error"].max())})
    return pd.DataFrame(rows, columns=SLOPE_COLUMNS)


_FLOW_TAG = {"flow (1)": "flow1", "flow (2)": "flow2", "SGD+M flow": "sgdm_flow",
             "SGD+M flow without h/4 terms": "sgdm_flow_noreg"}
_COMP_TEXT = {
    "naive": "GD+M from rest (x_{-1}=x_0) vs {flow} from x_0",
    "manifold": "GD+M started on the slow manifold to O(h) (M7) vs {flow} from x_0",
    "manifold2": "GD+M started on the slow manifold to O(h^2) (M7) vs {flow} from x_0",
    "shifted": "GD+M from rest vs {flow} from the shifted start x_0 + h b/(1-b)^2 grad E(x_0) (M4), t >= t_burn",
    "sgdm": "SGD+M from rest vs {flow} from x_0 (RMS over sample streams)",
    "sgdm_deterministic": "SGD+M on the constant stream (GD+M) from rest vs {flow} from x_0",
}


def beta_tag(beta: float) -> str:
    """Canonical β in ids: 0.9 -> 'beta0.9', 0.50 -> 'beta0.5'."""
    return f"beta{float(beta):g}"


def order_claims(slopes_df: pd.DataFrame, cfg: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One claims row per (problem, β, comparison, flow) on its primary window.

    Verdict: |slope − expected| ≤ cfg["slope_tol"] (default 0.15, fixed before any
    measurement) via :func:`igrm.claims.within`; a fit whose standard error exceeds the
    tolerance is inconclusive.
    """
    tol = float((cfg or {}).get("slope_tol", 0.15))
    rows = []
    for r in slopes_df[slopes_df["primary"]].itertuples(index=False):
        part = "sgdm" if r.comparison.startswith("sgdm") else "gdm"
        cid = f"order/{part}/{r.problem}/{beta_tag(r.beta)}/{r.comparison}/{_FLOW_TAG.get(r.flow, r.flow)}"
        verdict = _claims.within(r.slope, r.expected_slope, tol)
        if math.isfinite(r.slope_se) and r.slope_se > tol:
            verdict = _claims.INCONCLUSIVE
        text = _COMP_TEXT[r.comparison].replace("{flow}", r.flow)
        claim = f"{text}: global error O(h^{r.expected_slope:g}) ({r.problem}, beta={r.beta:g})"
        source = ("docs/theory.md (T19); docs/modified_flows.md §4" if part == "sgdm"
                  else "docs/theory.md (T5), (T6); docs/modified_flows.md §2-3")
        detail = (f"log-log fit over {r.n_points} step sizes h in [{r.h_min:.3g}, {r.h_max:.3g}], window {r.window}; "
                  f"smallest error {r.min_error:.3g}, largest reference error {r.max_reference_error:.2g}")
        rows.append(_claims.row(cid, claim, source, float(r.expected_slope), float(r.slope), tol, verdict,
                                uncertainty=float(r.slope_se), detail=detail))
    return _claims.frame(rows)


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------

_COMP_COLORS = {"naive": "#d62728", "manifold": "#1f77b4", "manifold2": "#9467bd", "shifted": "#2ca02c",
                "sgdm": "#1f77b4", "sgdm_deterministic": "#7f7f7f"}
_FLOW_STYLE = {"flow (1)": ("--", "s"), "flow (2)": ("-", "o"), "SGD+M flow": ("-", "o"),
               "SGD+M flow without h/4 terms": ("--", "s")}
ERROR_LABEL = r"global error $\max_{kh\leq T}\|x_k - x(kh)\|$"


def _slope_triangles(ax, h, err):
    """Reference triangles of slope 1 and 2 in the lower right of the data range."""
    h = np.asarray(h, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    err = err[np.isfinite(err) & (err > 0)]
    if len(h) < 2 or len(err) == 0:
        return
    h0, h1 = float(h.min()), float(h.max())
    x0 = h0 * (h1 / h0) ** 0.55
    x1 = h0 * (h1 / h0) ** 0.85
    y0 = float(err.min())
    for p, yoff in ((1, 1.0), (2, 8.0)):
        ya = y0 * yoff
        yb = ya * (x1 / x0) ** p
        ax.plot([x0, x1, x1, x0], [ya, ya, yb, ya], color="0.35", lw=0.8)
        ax.text(x1 * 1.05, (ya * yb) ** 0.5, f"{p}", fontsize=7, color="0.25", va="center")


def _finish_axes(ax, ncol: int, title: str):
    """No minor tick labels on the log axes; legend below the panel, clear of the data."""
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol, title=title,
              title_fontsize=6, frameon=False)


def _slope_lookup(slopes: pd.DataFrame | None):
    if slopes is None or not len(slopes):
        return {}
    return {(r.problem, float(r.beta), r.comparison, r.flow, r.window): (r.slope, r.slope_se)
            for r in slopes.itertuples(index=False)}


def plot_gdm_orders(df: pd.DataFrame, slopes: pd.DataFrame | None, paths: Iterable, caption: str | None = None):
    """Log-log global error vs h, one panel per (problem, β), a line per (comparison, flow)
    on its primary window, fitted slopes in the legend, slope-1 and slope-2 triangles."""
    from .figures.style import figure, save

    d = df[df["comparison"].isin(COMPARISONS)]
    d = d[d["window"] == d["comparison"].map(PRIMARY_WINDOW)]
    problems = list(dict.fromkeys(d["problem"]))
    betas = sorted(d["beta"].unique())
    fig, axes = figure(max(len(problems), 1), max(len(betas), 1), width=3.8, height=4.0)
    fits = _slope_lookup(slopes)
    for pi, prob in enumerate(problems):
        for bi, beta in enumerate(betas):
            ax = axes[pi, bi]
            g = d[(d["problem"] == prob) & (d["beta"] == beta)]
            if g.empty:
                ax.set_axis_off()
                continue
            for (comp, flow), gg in g.groupby(["comparison", "flow"], sort=False):
                ls, mk = _FLOW_STYLE[flow]
                s, se = fits.get((prob, float(beta), comp, flow, PRIMARY_WINDOW[comp]), (math.nan, math.nan))
                ax.loglog(gg["h"], gg["error"], ls=ls, marker=mk, ms=3, color=_COMP_COLORS[comp],
                          label=f"{comp}, {flow}: {s:.2f}±{se:.2f}")
            _slope_triangles(ax, g["h"], g["error"])
            ax.set_title(f"{prob}, β = {beta:g}")
            ax.set_xlabel("step size h")
            ax.set_ylabel(ERROR_LABEL)
            _finish_axes(ax, ncol=2, title="start, flow: fitted slope ± s.e.")
    cap = caption or ("Global error of GD+M against its modified flows versus step size h (log-log). "
                      "naive: from rest vs flow from x_0; manifold/manifold2: started on the slow manifold "
                      "to O(h)/O(h^2); shifted: from rest vs flow from the shifted start (error over "
                      "t >= t_burn). Legend: fitted slope ± standard error; triangles: slopes 1 and 2.")
    return save(fig, paths, caption=cap)


def plot_sgdm_orders(df: pd.DataFrame, slopes: pd.DataFrame | None, paths: Iterable, caption: str | None = None):
    """Log-log RMS (over streams) global error of SGD+M against its flow with and without
    the h/4 terms, error bars std/√n, one panel per β; deterministic-stream lines thin."""
    from .figures.style import figure, save

    d = df[df["comparison"].isin(("sgdm", "sgdm_deterministic"))]
    betas = sorted(d["beta"].unique())
    fig, axes = figure(1, max(len(betas), 1), width=3.8, height=4.2)
    fits = _slope_lookup(slopes)
    for bi, beta in enumerate(betas):
        ax = axes[0, bi]
        g = d[d["beta"] == beta]
        for (prob, comp, flow), gg in g.groupby(["problem", "comparison", "flow"], sort=False):
            ls, mk = _FLOW_STYLE.get(flow, (":", "^"))
            s, se = fits.get((prob, float(beta), comp, flow, "all"), (math.nan, math.nan))
            if comp == "sgdm":
                yerr = gg["error_std"] / np.sqrt(gg["n_streams"])
                ax.errorbar(gg["h"], gg["error"], yerr=yerr, ls=ls, marker=mk, ms=3, color=_COMP_COLORS[comp],
                            capsize=2, label=f"{flow} (RMS, {int(gg['n_streams'].iloc[0])} streams): {s:.2f}±{se:.2f}")
            else:
                ax.plot(gg["h"], gg["error"], ls=":", marker=mk, ms=2, lw=0.9,
                        color="0.45" if flow.startswith("SGD") else "#ff7f0e",
                        label=f"constant stream, {flow}: {s:.2f}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if len(g):
            _slope_triangles(ax, g["h"], g["error"])
        ax.set_title(f"SGD+M, two factors, β = {beta:g}")
        ax.set_xlabel("step size h")
        ax.set_ylabel(ERROR_LABEL)
        _finish_axes(ax, ncol=1, title="flow: fitted slope ± s.e.")
    cap = caption or ("Global error of SGD+M (two-factor stream) against the piecewise SGD+M modified flow "
                      "with and without its h/4 terms versus h (log-log); RMS over sample streams, error "
                      "bars std/sqrt(n). Dotted: constant stream (GD+M) against the SGD+M flow and flows (1)-(2) "
                      "from x_0. Legend: fitted slope ± standard error; triangles: slopes 1 and 2.")
    return save(fig, paths, caption=cap)
