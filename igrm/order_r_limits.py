"""What the orders buy: the limit sharpness of GD+M against the limits of its order-R flows,
R = 1…5, on the two-factor toy (docs/modified_flows.md §8.6, (M24)).

GD+M starts on its slow manifold to matching order ((M20), as the error orders of §8.2) and
runs to convergence; the order-R flow (M19) from x₀ runs until ‖field‖ < gtol. Error
δ_S = |S_flow/S_GD+M − 1|, S = λ_max(∇²E) at the limit; expected O(h^R) at fixed β (the
flow is O(h^R) close over any finite time and both converge to nearby points of the valley).
The from-rest start of §7.7 needs the rest offset to O(h^{R−1}), derived only to O(h²) (T94),
so it is not used here.
"""

from __future__ import annotations

import time as _time

import numpy as np

from . import flows as F
from .higher_limits import limit_arrays, limit_grid
from .order_r_study import compiled_fields


def limit_labels(R: int) -> str:
    """The tidy tables' name of the order-R flow's limit."""
    return f"order-{R} flow"


def _gdm_limits(p, w0, Bt, h, steps: int, orders) -> np.ndarray:
    """GD+M's limit per (R, lane), started on the slow manifold of the order-R flow: (R, N, 2)."""
    out = np.full((len(orders), len(Bt), 2), np.nan)
    for ri, R in enumerate(orders):
        for b in dict.fromkeys(Bt.tolist()):
            lanes = np.flatnonzero(Bt == b)
            start = compiled_fields(p, int(R), float(b))["start"]
            X0 = np.tile(w0, (len(lanes), 1))
            Xp = X0 + start(X0, h[lanes])
            out[ri, lanes] = F.heavy_ball_two_factor_final_from(p, X0, Xp, Bt[lanes], h[lanes], steps)
    return out


def _flow_limits(p, w0, Bt, h, horizon, gtol, orders, loose: float):
    """The order-R flows' limits per (R, lane) (LSODA, rtol 1e-11·loose, atol 1e-14·loose) and
    whether every lane converged: ((R, N, 2), (R,))."""
    out = np.full((len(orders), len(Bt), 2), np.nan)
    conv = np.zeros(len(orders), dtype=bool)
    for ri, R in enumerate(orders):
        ok = True
        for b in dict.fromkeys(Bt.tolist()):
            lanes = np.flatnonzero(Bt == b)
            field = compiled_fields(p, int(R), float(b))["flow"]
            hl = h[lanes]
            res = F.solve_flow(
                lambda w, hl=hl, field=field: -field(w, hl),
                np.tile(w0, (len(lanes), 1)),
                horizon,
                gtol=gtol,
                method="LSODA",
                rtol=1e-11 * loose,
                atol=1e-14 * loose,
            )
            out[ri, lanes] = res["w"]
            ok = ok and res["converged"]
        conv[ri] = ok
    return out, conv


def limit_sharpness_any_order(*, betas, eps, time, gtol, orders, two_factor):
    """Limit sharpness of GD+M (slow start to matching order) vs its order-R flows over (β, ε).

    Keywords: the keys of ``orders.higher.any_order_limits`` (betas, eps, time, gtol, orders)
    and ``two_factor``, the ``toy.two_factor`` section (x, y, init). η = ε(1−β)/λ_max(∇²E(x₀)),
    h = η(1−β); every run takes ⌈time / min η⌉ steps (as higher_limits).

    Arrays as igrm.higher_limits (kind "limits", comparison "limit_slow"): beta, eps, eta, h;
    sharpness_gdm (R, N) per start; sharpness, errors, reference_error (R, N); converged (R,);
    flows (R,) labels.
    """
    t0 = _time.perf_counter()
    p, w0, s0, (Bt, Ep, eta, h), steps = limit_grid(betas, eps, time, two_factor)
    Rs = [int(r) for r in sorted(orders)]
    W = _gdm_limits(p, w0, Bt, h, steps, Rs)
    horizon = float(steps * np.min(h))
    Wf, conv = _flow_limits(p, w0, Bt, h, horizon, float(gtol), Rs, 1.0)
    Wc, _ = _flow_limits(p, w0, Bt, h, horizon, float(gtol), Rs, 100.0)
    arrays = limit_arrays(p, (Bt, Ep, eta, h), W, p.sharpness(Wf), p.sharpness(Wc))
    labels = np.array([limit_labels(R) for R in Rs])
    arrays.update({"converged": conv, "flows": labels, "comparison": np.array("limit_slow")})
    attrs = {
        "kind": "limits",
        "problem": "two_factor",
        "steps": steps,
        "sharpness_init": s0,
        "gtol": float(gtol),
        "flows_converged": bool(conv.all()),
        "runtime_s": _time.perf_counter() - t0,
    }
    return arrays, attrs
