"""Claim rows of §8.4 (results/claims/order_r_metric.csv; docs/modified_flows.md §8.4, (M22)):
is heavy ball's order-R modified flow a gradient flow? Our finding, beyond the paper (the
published statement, GD on a modified loss (M23), is the ``gd_loss`` rows of
igrm.claims.orders). Exact symbolic results of igrm.order_r_losses on its two 2-D test
polynomials at β = 4/5, so a row reproduces or does not, without an interval:

- ``order/any_order_metric/test_losses/beta0.8/metric/flow_order<R>``: the order-R flow is
  −P∇Ẽ + O(h^R) with P = I + Σ μ_k (hH)^k and Ẽ built from every scalar invariant, with
  coefficients shared by both losses (the conditions through h^{R−1} have a solution);
- ``order/any_order_metric/test_losses/beta0.8/euclidean/f<n>``: f_n, the h^n term of the flow
  (M18)–(M19), is a Euclidean gradient (curl f_n ≡ 0 on the first test loss).
"""

from __future__ import annotations

import sympy as sp

from .. import order_r_losses as L
from . import FAILS, REPRODUCES, frame, row

SOURCE = "docs/modified_flows.md §8.4 (M22) (our finding, beyond the paper)"
FINDING = "finding beyond the paper (ours, not a published claim): "


def _prefix(b) -> str:
    return f"order/any_order_metric/test_losses/beta{float(b):g}"


def _flow3_metric(mu, m) -> str:
    """Whether the solution family contains issue 22's metric μ₁ = 0, μ₂ = 1/(6m²) (§7.2)."""
    if len(mu) < 2:
        return ""
    free = sorted(set().union(*(sp.sympify(v).free_symbols for v in mu[:2])), key=str)
    pins = sp.solve([mu[0], mu[1] - 1 / (6 * m**2)], free, dict=True) if free else []
    hit = bool(pins) or (not free and mu[0] == 0 and sp.simplify(mu[1] - 1 / (6 * m**2)) == 0)
    return f"; contains mu1 = 0, mu2 = 1/(6m^2) (the metric of the O(h^3) flow, §7.2): {'yes' if hit else 'no'}"


def metric_rows(results: dict, curls, b=L.TEST_BETA) -> list[dict]:
    """The rows of ``results`` {R: igrm.order_r_losses.gradient_flow_test(R)} and ``curls``
    [curl f_n, n = 0…] (igrm.order_r_losses.euclidean_curls), at β = ``b``."""
    m = 1 - sp.nsimplify(b)
    rows = []
    for R, res in sorted(results.items()):
        ok = bool(res["solvable"])
        free = sorted(set().union(set(), *(sp.sympify(v).free_symbols for v in res["mu"])), key=str)
        steps = ", ".join(f"h^{n} {'solvable' if s else 'INCONSISTENT'}" for n, s in res["orders"]) or "none (f = -g/m)"
        detail = (
            f"exact SymPy solve of (M22) on {len(L.TEST_LOSSES)} test polynomials, shared coefficients, "
            f"every branch kept: {steps}; mu{'' if ok else ' of the last solvable order'} = "
            f"[{', '.join(map(str, res['mu']))}]"
            + (f" (free: {', '.join(map(str, free))})" if free and ok else "")
            + (_flow3_metric(res["mu"], m) if ok and R == 3 else "")
        )
        rows.append(
            row(
                f"{_prefix(b)}/metric/flow_order{R}",
                FINDING + f"the order-{R} flow (M19) is a gradient flow -P grad E~ + O(h^{R}) in a metric "
                f"P = I + sum_k mu_k (hH)^k (M22) (two 2-D test losses, beta={float(b):g})",
                SOURCE,
                1.0,
                float(ok),
                "exact (1 = a solution exists)",
                REPRODUCES if ok else FAILS,
                detail=detail,
            )
        )
    for n, c in enumerate(curls):
        nonzero = len(sp.Poly(c, L.X1, L.X2).coeffs()) if c != 0 else 0
        rows.append(
            row(
                f"{_prefix(b)}/euclidean/f{n}",
                FINDING + f"f_{n}, the h^{n} term of the modified flow (M18)-(M19), is a Euclidean gradient "
                f"(curl f_{n} = 0) (test loss, beta={float(b):g})",
                SOURCE,
                0.0,
                float(nonzero),
                "exact (number of nonzero coefficients of curl f_n)",
                REPRODUCES if nonzero == 0 else FAILS,
                detail=f"curl f_{n} = {c if nonzero <= 4 else f'a polynomial with {nonzero} terms'} on E = {L.TEST_LOSS}",
            )
        )
    return rows


def metric_claims(*, orders):
    """The rows for every R in ``orders`` (config ``orders.higher.any_order.orders``), and the
    Euclidean rows f_0…f_{max R − 1}; none when ``orders`` is empty. About 10 s for R = 1…5."""
    Rs = sorted(int(r) for r in orders)
    results = {R: L.gradient_flow_test(R) for R in Rs}
    curls = L.euclidean_curls(max(Rs)) if Rs else []
    return frame(metric_rows(results, curls))
