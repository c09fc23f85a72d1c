"""What the O(h³) flow buys: the limit point's sharpness of GD+M (from rest) against the
limits of flow (2) and of the O(h³) flow on the two-factor toy, over (β, ε)
(docs/modified_flows.md §7.6; docs/theory.md (T87), (T94), (T95)).

Limits compared with GD+M's (heavy ball from rest, x_{−1} = x_0, as in the sharpness sweep):
    flow (2) from x_0                    the paper's comparison (toy.sharpness_sweep)
    flow (3) from x_0                    the O(h³) flow, unshifted start
    flow (3) from x_0 + Δ₂ (T94)         the O(h³) flow from the rest-offset start
Error: |S_flow / S_GD+M − 1|, S = λ_max(∇²E) at the limit. Expected order in h at fixed β
(T95): 2, 2 (the rest offset moves the limit by O(h²): (T53)) and 3.
"""

from __future__ import annotations

import math
import time as _time

import numpy as np

from . import flows as F
from .problems import TwoFactor

LIMIT_FLOWS = ("flow (2)", "flow (3)", "flow (3) from x_0 + Delta_2")


def limit_grid(betas, eps, time, two_factor):
    """(p, w0, S(w0), (β, ε, η, h) β-major over the grid, steps) of a limit study on the
    two-factor toy (``toy.two_factor``: x, y, init): η = ε(1−β)/λ_max(∇²E(x₀)), h = η(1−β),
    every run ⌈time / min η⌉ steps."""
    p = TwoFactor(x=float(two_factor["x"]), y=float(two_factor["y"]))
    w0 = np.asarray(two_factor["init"], dtype=np.float64)
    s0 = float(p.sharpness(w0))
    grid = np.meshgrid(np.asarray(betas, dtype=np.float64), np.asarray(eps, dtype=np.float64), indexing="ij")
    Bt, Ep = (a.ravel() for a in grid)
    eta = Ep * (1.0 - Bt) / s0
    steps = int(math.ceil(float(time) / float(np.min(eta))))
    return p, w0, s0, (Bt, Ep, eta, eta * (1.0 - Bt)), steps


def limit_arrays(p, grid, W, S, S_check) -> dict:
    """The arrays of a limit study: the grid (beta, eps, eta, h); GD+M's limit sharpness and
    gradient norm at its limits W (…, N, 2) (NaN where a run diverged); the flows' sharpness S,
    errors |S/S_GD+M − 1| ((T95), (M24)) and reference_error |S − S_check|/S_GD+M."""
    finite = np.all(np.isfinite(W), axis=-1)
    Wz = np.nan_to_num(W)
    S_gdm = np.where(finite, p.sharpness(Wz), np.nan)
    return {
        **dict(zip(("beta", "eps", "eta", "h"), grid)),
        "sharpness_gdm": S_gdm,
        "gnorm_gdm": np.where(finite, np.sqrt(p.grad_norm2(Wz)), np.nan),
        "sharpness": S,
        "errors": np.abs(S / S_gdm - 1.0),
        "reference_error": np.abs(S - S_check) / S_gdm,
    }


def limit_sharpness_orders(*, betas, eps, time, gtol, two_factor):
    """Limit sharpness of GD+M vs flow (2) / flow (3) on E = ½(y − w1 w2 x)² over (β, ε).

    Keywords: the keys of ``orders.higher.limits`` (betas, eps, time, gtol) and
    ``two_factor``, the ``toy.two_factor`` section (x, y, init). For each β and ε: η = ε(1−β)/λ_max(∇²E(x₀)),
    h = η(1−β); every run takes ⌈time / min η⌉ steps (as toy.limit_convergence); flows run
    until ‖field‖ < gtol (flows.solve_flow, LSODA rtol 1e-11, atol 1e-14).

    Arrays (N = #β · #ε, β-major): beta, eps, eta, h; sharpness_gdm, gnorm_gdm (N,);
    sharpness (F, N), errors (F, N) = |S_flow/S_GD+M − 1|, reference_error (F, N) =
    |S_flow − S_flow,check|/S_GD+M (the rerun at 100× looser tolerances), converged (F,); flows (F,).
    """
    t0 = _time.perf_counter()
    p, w0, s0, (Bt, Ep, eta, h), steps = limit_grid(betas, eps, time, two_factor)
    N = Bt.size
    W = F.heavy_ball_two_factor_final(p, np.tile(w0, (N, 1)), Bt, h, steps)
    t_gdm = _time.perf_counter()
    shifted = np.stack([w0 + F.rest_offset2(p, w0, b, np.array([hh]))[0] for b, hh in zip(Bt, h)])
    gtol = float(gtol)
    horizon = float(steps * np.min(h))
    starts = (np.tile(w0, (N, 1)), np.tile(w0, (N, 1)), shifted)
    h2s = (np.zeros(N), h * h, h * h)
    S = np.full((len(LIMIT_FLOWS), N), np.nan)
    S_check = np.full((len(LIMIT_FLOWS), N), np.nan)
    conv = np.zeros(len(LIMIT_FLOWS), dtype=bool)
    for fi, (st, h2) in enumerate(zip(starts, h2s)):
        # LSODA: the flows are stiff near the valley at large β (λ/(1−β) ≫ 1), where DOP853
        # hovers at its stability limit above gtol; the rerun at 100× looser tolerances bounds
        # the reference's own error
        for out, tol in ((S, 1.0), (S_check, 100.0)):
            res = F.solve_flow(
                lambda w, h2=h2: -F.flow3_field(p, w, Bt, h, h2, h2),
                st,
                horizon,
                gtol=gtol,
                method="LSODA",
                rtol=1e-11 * tol,
                atol=1e-14 * tol,
            )
            out[fi] = p.sharpness(res["w"])
            if tol == 1.0:
                conv[fi] = res["converged"]
    t_end = _time.perf_counter()
    arrays = limit_arrays(p, (Bt, Ep, eta, h), W, S, S_check)
    arrays.update({"converged": conv, "flows": np.array(LIMIT_FLOWS)})
    attrs = {
        "kind": "limits",
        "problem": "two_factor",
        "steps": steps,
        "sharpness_init": s0,
        "gtol": gtol,
        "flows_converged": bool(conv.all()),
        "gnorm_gdm_max": float(np.nanmax(arrays["gnorm_gdm"])),
        "runtime_s": t_end - t0,
        "runtime_gdm_s": t_gdm - t0,
    }
    return arrays, attrs
