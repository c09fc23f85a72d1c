"""A high-precision reference for the order-R flows where float64 floors the check
(docs/modified_flows.md §8.2, (M25)).

DOP853 at its tightest tolerances (rtol ≈ 2.5e−14) bounds its own error, measured as the gap
to a 10× looser rerun, at ~1e−11 on the sigmoid toy: too close to the order-5 errors
(~6e−10). This reference is classical RK4 with exact coefficients in x87 extended precision
(``numpy.longdouble``: unit roundoff 5.4e−20, float64's is 1.1e−16), the field lambdified with
its rational coefficients as longdouble quotients; each lane (one h) steps m substeps of
h/m per heavy-ball step, so the solution lands exactly on heavy ball's grid t = kh and no
dense-output interpolant enters. Its floor is the gap to the same solve with m/2 substeps
(RK4: the coarse solve's error, ≈ 16× the fine one's).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

LD = np.longdouble


class _LongdoublePrinter(NumPyPrinter):
    """numpy code whose numbers are longdouble: p/q as _ld('p')/_ld('q') (a bare p/q would be a
    float64 quotient, off by ~1e−16 relative), floats and large integers from their digits."""

    def _print_Rational(self, expr):
        return f"(_ld('{expr.p}')/_ld('{expr.q}'))"

    def _print_Integer(self, expr):
        return f"_ld('{expr.p}')"

    def _print_Float(self, expr):
        return f"_ld('{sp.Float(expr, 30)}')"


def lambdify_longdouble(args, exprs):
    """``sympy.lambdify`` of a list of expressions for longdouble arrays (a callable returning
    a list, entries scalars where an expression is constant)."""
    return sp.lambdify(args, exprs, modules=[{"_ld": LD}, "numpy"], printer=_LongdoublePrinter, cse=True)


def substeps(h, dt: float) -> np.ndarray:
    """Substeps per heavy-ball step of each lane: the even m ≥ h/dt (even, so that the check
    solve has exactly m/2)."""
    return 2 * np.ceil(np.asarray(h, dtype=np.float64) / (2.0 * float(dt))).astype(np.int64)


def rk4_on_grid(field, X0, h, n, m) -> np.ndarray:
    """The states at t = kh, k = 0…n_j, of X' = field(X, h) from X0, by RK4 with m_j substeps of
    h_j/m_j on lane j (all lanes stepped together; a finished lane is frozen).

    field: callable (Y (lanes, d) longdouble, h (lanes,) longdouble) → (lanes, d). Returns
    (max n + 1, lanes, d) longdouble, NaN past a lane's last step.
    """
    h, n, m = (np.asarray(a) for a in (h, n, m))
    hh = h.astype(LD)
    dt = (hh / m.astype(LD))[:, None]
    Y = np.asarray(X0, dtype=LD).copy()
    out = np.full((int(n.max()) + 1, *Y.shape), np.nan, dtype=LD)
    out[0] = Y
    half, sixth, two = LD(1) / LD(2), LD(1) / LD(6), LD(2)
    for s in range(1, int((n * m).max()) + 1):
        live = s <= n * m
        k1 = field(Y, hh)
        k2 = field(Y + half * dt * k1, hh)
        k3 = field(Y + half * dt * k2, hh)
        k4 = field(Y + dt * k3, hh)
        Y = np.where(live[:, None], Y + sixth * dt * (k1 + two * (k2 + k3) + k4), Y)
        done = live & (s % m == 0)
        out[s // m[done], np.flatnonzero(done)] = Y[done]
    return out
