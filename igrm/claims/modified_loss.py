"""Claim rows of the modified loss at O(h²) (results/claims/modified_loss.csv;
docs/modified_flows.md §7.2, igrm.modified_loss):

- ``modified_loss/metric_identity/<problem>/beta<β>``: the O(h³) flow equals
  −(I + h²H²/(6m²))∇Ẽ₂ up to its exact O(h³) remainder, at random points, to rounding
  (declared: relative residual ≤ 1e−12);
- ``modified_loss/fixed_points/two_factor/beta<β>``: at the limits of Ẽ₂'s metric flow,
  ∇Ẽ₂ and flow (3)'s field both vanish (≤ 10·gtol): its fixed points are Ẽ₂'s stationary points;
- ``modified_loss/limit/two_factor/beta<β>``: GD+M's limit point (from rest) predicted by
  the limit of Ẽ₂'s metric flow from x₀ + Δ₂ ((T94)), error O(h³): the fitted order with its
  t-interval against 3 ± ``slope_tol`` (judged where the grid's ε ≤ min(max_epsilon,
  1/(1+√β)²), (T51)).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import flows as F
from ..modified_loss import etilde2_grad, identity_residual, limit_orders
from ..problems import LeastSquares, TwoFactor
from ..stats import equivalence_t
from . import FAILS, OUT_OF_RANGE, REPRODUCES, frame, row

SOURCE = "docs/modified_flows.md §7.2 (Ẽ₂ in the metric (I + h²H²/(6(1−β)²))⁻¹); docs/theory.md (T87), (T94)"
IDENTITY_TOL = 1e-12


def _identity_rows(problems: dict, betas, hs) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for name, p in problems.items():
        X = rng.normal(size=(200, p.dim))
        for b in betas:
            res = max(identity_residual(p, X, float(b), float(hh)) for hh in hs)
            rows.append(
                row(
                    f"modified_loss/metric_identity/{name}/beta{float(b):g}",
                    f"GD+M's O(h³) flow is the gradient flow of Ẽ₂ in the metric (I + h²H²/(6(1−β)²))⁻¹, up to "
                    f"its exact O(h³) remainder ({name}, β={float(b):g})",
                    SOURCE,
                    0.0,
                    res,
                    f"≤ {IDENTITY_TOL:g} (rounding)",
                    REPRODUCES if res <= IDENTITY_TOL else FAILS,
                    detail=(
                        f"max over 200 random points and h ∈ {{{', '.join(f'{x:g}' for x in hs)}}} of "
                        "|f₃ − (−(I + h²H²/(6m²))∇Ẽ₂) − R| / max|f₃|, R = h³(1+β)H³g/(12m⁵) + c h⁴H²∇(gᵀHg)/(6m²)"
                    ),
                )
            )
    return rows


def _order(h, err):
    x, y = np.log(h), np.log(err)
    A = np.vstack([x, np.ones_like(x)]).T
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    df = len(x) - 2
    se = math.sqrt(float(resid @ resid) / df / float(((x - x.mean()) ** 2).sum())) if df > 0 else math.nan
    return float(coef[0]), se, df


def _limit_rows(p: TwoFactor, x0, betas, eps, time, gtol, slope_tol, ci, max_epsilon) -> list[dict]:
    rows = []
    for b in betas:
        b = float(b)
        r = limit_orders(problem=p, x0=x0, beta=b, eps=eps, time=time, gtol=gtol)
        fp = max(
            float(np.abs(etilde2_grad(p, r["limit_shifted"], b, r["h"][:, None])).max()),
            float(np.abs(F.flow3_field(p, r["limit_shifted"], b, r["h"], r["h"] ** 2, r["h"] ** 2)).max()),
        )
        rows.append(
            row(
                f"modified_loss/fixed_points/two_factor/beta{b:g}",
                f"the limits of Ẽ₂'s metric flow are stationary points of Ẽ₂ and fixed points of GD+M's O(h³) flow (two_factor, β={b:g})",
                SOURCE,
                0.0,
                fp,
                f"≤ 10·gtol = {10 * gtol:g}",
                REPRODUCES if fp <= 10 * gtol and r["converged"] else FAILS,
                detail=f"max |∇Ẽ₂|, |f₃| at the {len(r['h'])} limits (flows converged: {r['converged']})",
            )
        )
        slope, se, df = _order(r["h"], r["error_shifted"])
        verdict, hw = equivalence_t(slope, se, df, 3.0, slope_tol, ci)
        bound = min(float(max_epsilon), 1.0 / (1.0 + math.sqrt(b)) ** 2)
        eps_max = float(np.max(eps))
        cid = f"modified_loss/limit/two_factor/beta{b:g}"
        if eps_max > bound:
            verdict, cid = OUT_OF_RANGE, cid + "/out_of_range"
        s0, _, _ = _order(r["h"], r["error_x0"])
        rows.append(
            row(
                cid,
                f"GD+M's limit point (from rest) is the limit of Ẽ₂'s metric flow from x₀ + Δ₂, error O(h³) (two_factor, β={b:g})",
                SOURCE,
                3.0,
                slope,
                f"±{slope_tol:g} (equivalence)",
                verdict,
                uncertainty=hw,
                detail=(
                    f"‖x_flow − x_GD+M‖ over ε ∈ [{min(eps):g}, {eps_max:g}] ({len(eps)} points), h {r['h'].min():.3g}–"
                    f"{r['h'].max():.3g}: {', '.join(f'{e:.3g}' for e in r['error_shifted'])}; {ci:.0%} interval of the "
                    f"order [{slope - hw:.3f}, {slope + hw:.3f}] (t, {df} df); from x₀ without the offset: order {s0:.3f} "
                    f"(expected 2, (T94)); ε ≤ {eps_max:g} vs bound {bound:.3g}; GD+M ‖∇E‖ at the end ≤ {r['gnorm_gdm'].max():.2g}"
                ),
            )
        )
    return rows


def modified_loss_claims(
    *, betas, eps, time, gtol, two_factor: dict, lstsq: dict, slope_tol: float, ci: float, max_epsilon: float
) -> pd.DataFrame:
    """The rows of the module docstring. Keywords: ``orders.modified_loss`` (betas, eps, time,
    gtol), the problems' sections ``toy.two_factor`` and ``orders.gdm.lstsq``, and
    ``orders``'s slope_tol, ci, max_epsilon."""
    tf = TwoFactor(x=float(two_factor["x"]), y=float(two_factor["y"]))
    ls = LeastSquares.random(
        dim=int(lstsq["dim"]), n=int(lstsq["n"]), cond=float(lstsq["cond"]), seed=int(lstsq["seed"])
    )
    rows = _identity_rows({"two_factor": tf, "lstsq": ls}, betas, hs=(1e-3, 1e-2, 5e-2))
    rows += _limit_rows(
        tf,
        np.asarray(two_factor["init"], float),
        betas,
        list(eps),
        float(time),
        float(gtol),
        float(slope_tol),
        float(ci),
        max_epsilon,
    )
    return frame(rows)
