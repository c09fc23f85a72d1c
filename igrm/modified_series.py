"""Symbolic derivation (SymPy) of the higher-order modified flow of heavy-ball momentum.

Heavy ball x_{k+1} − (1+β) x_k + β x_{k−1} = h F(x_k) (F = −∇E; docs/modified_flows.md (M1))
has a smooth ("slow") solution x_k = X(kh) with

    X' = f₀ + h f₁ + h² f₂ + O(h³),                                         docs/theory.md (T86)

each f_n a combination of the elementary differentials of F with n+1 nodes (B-series
trees): f₀ ∝ F, f₁ ∝ F'F, f₂ = a F'F'F + b F''(F, F). The coefficients are found by
inserting the ansatz into the recursion, Taylor-expanding X((k±1)h) with X'' = (Df)f,
X''' = D((Df)f)f, …, and matching powers of h (:func:`derive_gdm_flow`).

Why a 1-D computation is enough: the recursion and the ansatz are the same for every
dimension (a B-series), so the coefficients are dimension-free. In one dimension the
elementary differentials of the trees with at most 3 nodes, F, F'F, F'²F and F''F², are
distinct monomials in (F, F', F''), so matching their coefficients in 1-D determines
every coefficient through f₂ (from 4 nodes on, 1-D monomials coincide for different
trees, e.g. F''(F'F, F) and F'F''(F, F) both give F''F'F², so this trick stops at f₂).
:func:`check_flow_2d` checks the result on a general 2-D polynomial loss, where
H and T[∇E] do not commute.

Also derived here: the start on the slow manifold to O(h³) (x_{−1} = X(−h), (T88)), the
exact slow-root series of the linear case log r₁(z) = Σ c_n zⁿ ((T90)) and the
gradient-field test of f₂ ((T89)). Derivations: docs/modified_flows.md §7.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

beta, h, z = sp.symbols("beta h z")
#: F0 = F, F1 = F', F2 = F'', F3 = F''' in the 1-D computation
F_SYMS = sp.symbols("F0:6")


def _ddx(p):
    """Total x-derivative of a polynomial (sp.Poly in h, F0, F1, …) with dF_i/dx = F_{i+1}."""
    gens = p.gens
    out = p * 0
    for i in range(len(F_SYMS) - 1):
        out += p.diff(gens[1 + i]) * sp.Poly(F_SYMS[i + 1], *gens, domain=p.domain)
    return out


def _trunc(p, n):
    """p (sp.Poly with h its first generator) with the powers of h above h^n dropped."""
    return sp.Poly.from_dict({m: c for m, c in p.as_dict().items() if m[0] <= n}, *p.gens, domain=p.domain)


def _trunc_expr(e, n):
    """An expression with the powers of h above h^n dropped (expanded)."""
    e = sp.expand(e)
    return sp.Add(*[e.coeff(h, k) * h**k for k in range(n + 1)])


def _flow_derivatives(f, n_max, keep):
    """[X', X'', …, X^(n_max)] along X' = f, X^(n+1) = (d/dx X^(n)) f, each truncated at h^keep."""
    out = [_trunc(f, keep)]
    for _ in range(n_max - 1):
        out.append(_trunc(_ddx(out[-1]) * f, keep))
    return out


def _poly(expr, *extra):
    return sp.Poly(expr, h, *F_SYMS, domain=sp.QQ.frac_field(beta, *extra))


@cache
def derive_gdm_flow():
    """Coefficients of the modified flow of heavy ball through f₂, from the recursion.

    Returns {"c0", "c1", "c2a", "c2b"} (SymPy expressions in ``beta``) of
    X' = c0 F + h c1 F'F + h² (c2a F'F'F + c2b F''(F, F)), F = −∇E: the unique solution of
    residual/h = O(h³), residual = X(t+h) − (1+β)X(t) + βX(t−h) − hF(X(t)).
    """
    F0, F1, F2 = F_SYMS[:3]
    c = sp.symbols("c0 c1 c2a c2b")
    f = _poly(c[0] * F0 + h * c[1] * F1 * F0 + h**2 * (c[2] * F1**2 * F0 + c[3] * F2 * F0**2), *c)
    X = _flow_derivatives(f, 3, 2)
    # X(t±h) − X(t) = Σ_n (±h)^n/n! X^(n); residual/h through h²
    res = -_poly(F0, *c)
    for n in (1, 2, 3):
        res += X[n - 1] * _poly((1 + beta * (-1) ** n) * h ** (n - 1) / sp.factorial(n), *c)
    res = _trunc(res, 2)
    eqs = [sp.together(e.as_expr()) for e in res.coeffs()]
    eqs = [sp.numer(e) for e in eqs]
    sol = sp.solve(eqs, c, dict=True)
    if len(sol) != 1:
        raise RuntimeError(f"the order conditions have {len(sol)} solutions, expected 1")
    return {name: sp.factor(sol[0][s]) for name, s in zip(("c0", "c1", "c2a", "c2b"), c)}


def gradient_form():
    """The flow of :func:`derive_gdm_flow` for F = −∇E, in ∇E = g, H g, H²g and T[g, g]
    (T_ijk = ∂_i∂_j∂_k E): a tree with m nodes picks up (−1)^m. Returns
    {"g", "Hg", "HHg", "Tgg"}: X' = a_g g + h a_Hg Hg + h² (a_HHg H²g + a_Tgg T[g,g])."""
    c = derive_gdm_flow()
    return {
        "g": sp.factor(-c["c0"]),
        "Hg": sp.factor(c["c1"]),
        "HHg": sp.factor(-c["c2a"]),
        "Tgg": sp.factor(-c["c2b"]),
    }


@cache
def derive_slow_start():
    """x_{−1} = X(−h) on the slow manifold through x_0, to O(h³) (error O(h⁴)):
    X(−h) = x_0 + Σ_{n=1}^{3} (−h)^n/n! X^(n)(x_0) along the flow of :func:`derive_gdm_flow`.

    Returns {"g", "Hg", "HHg", "Tgg"}: x_{−1} − x_0 = h s_g g + h² s_Hg Hg + h³ (s_HHg H²g
    + s_Tgg T[g, g]) for F = −∇E.
    """
    F0, F1, F2 = F_SYMS[:3]
    c = derive_gdm_flow()
    f = _poly(c["c0"] * F0 + h * c["c1"] * F1 * F0 + h**2 * (c["c2a"] * F1**2 * F0 + c["c2b"] * F2 * F0**2))
    X = _flow_derivatives(f, 3, 2)
    d = _poly(0)
    for n in (1, 2, 3):
        d += X[n - 1] * _poly((-h) ** n / sp.factorial(n))
    d = _trunc(d, 3)
    coef = {m[:4]: cf for m, cf in zip(d.monoms(), d.coeffs())}
    # (power of h, F0, F1, F2) → gradient-form term, sign (−1)^(nodes)
    terms = {"g": ((1, 1, 0, 0), -1), "Hg": ((2, 1, 1, 0), 1), "HHg": ((3, 1, 2, 0), -1), "Tgg": ((3, 2, 0, 1), -1)}
    if set(coef) - {m for m, _ in terms.values()}:
        raise RuntimeError(f"unexpected terms in the slow start: {set(coef)}")
    return {k: sp.factor(s * coef.get(m, 0)) for k, (m, s) in terms.items()}


@cache
def slow_root_log_series(order: int):
    """log r₁(z) = Σ_{n=1}^{order} c_n zⁿ + O(z^{order+1}), z = hλ, r₁ the slow root of
    r² − (1 + β − z) r + β = 0 (r₁(0) = 1; docs/theory.md (T90)). Returns [c_1, …, c_order]
    (SymPy in ``beta``). For E = ½ xᵀAx − bᵀx the exact modified flow along an eigenvector
    with eigenvalue λ is X' = (log r₁(hλ)/h)(X − x*).

    r₁ = Σ a_n zⁿ order by order from the quadratic: a_0 = 1,
    (1−β) a_n = −a_{n−1} − Σ_{0<i<n} a_i a_{n−i}; then log: n l_n = n a_n − Σ_{k<n} k l_k a_{n−k}.
    """
    a = [sp.Integer(1)]
    for n in range(1, order + 1):
        a.append(sp.factor((-a[n - 1] - sum(a[i] * a[n - i] for i in range(1, n))) / (1 - beta)))
    l = [sp.Integer(0)]
    for n in range(1, order + 1):
        l.append(sp.factor(a[n] - sum(k * l[k] * a[n - k] for k in range(1, n)) / n))
    return l[1:]


def check_flow_2d(E, x1, x2, beta_value, coefficients=None):
    """Residual coefficients of the recursion for the derived flow on a 2-D loss E(x1, x2).

    Builds f = f₀ + h f₁ + h² f₂ from :func:`gradient_form` with the exact g, H, T of E, the
    flow derivatives X^(n) = (DX^(n−1)) f (D the Jacobian), and returns the coefficients of
    h⁰, h¹, h² of residual/h (each a 2-vector, expanded polynomials): all zero iff the flow
    satisfies the recursion to O(h³) — a check that does not use the 1-D argument.
    ``coefficients`` replaces :func:`gradient_form` (to show the check can fail).
    """
    xs = sp.Matrix([x1, x2])
    g = sp.Matrix([sp.diff(E, v) for v in (x1, x2)])
    H = g.jacobian(xs)
    Tgg = sp.Matrix(
        [(sp.Matrix([[sp.diff(E, a, b_, c_) for c_ in (x1, x2)] for b_ in (x1, x2)]) * g).dot(g) for a in (x1, x2)]
    )
    a = {k: sp.sympify(v).subs(beta, beta_value) for k, v in (coefficients or gradient_form()).items()}
    f = a["g"] * g + h * a["Hg"] * (H * g) + h**2 * (a["HHg"] * (H * H * g) + a["Tgg"] * Tgg)
    f = f.applyfunc(sp.expand)

    def tr(M, n):
        return M.applyfunc(lambda e: _trunc_expr(e, n))

    X = [f]
    for _ in range(2):
        X.append(tr(X[-1].jacobian(xs) * f, 2))
    bv = sp.nsimplify(beta_value)
    res = g + sum(
        (((1 + bv * (-1) ** n) * h ** (n - 1) / sp.factorial(n)) * X[n - 1] for n in (1, 2, 3)), sp.zeros(2, 1)
    )
    res = tr(res, 2)
    return [res.applyfunc(lambda e: sp.expand(e.coeff(h, k))) for k in range(3)]


def f2_jacobian_asymmetry(E, x1, x2):
    """(J − Jᵀ)_{12} of f₂ on a 2-D loss E, J = Df₂ (SymPy, β symbolic): zero for every E
    iff f₂ is a gradient field (docs/theory.md (T89))."""
    xs = sp.Matrix([x1, x2])
    g = sp.Matrix([sp.diff(E, v) for v in (x1, x2)])
    H = g.jacobian(xs)
    Tgg = sp.Matrix(
        [(sp.Matrix([[sp.diff(E, a, b_, c_) for c_ in (x1, x2)] for b_ in (x1, x2)]) * g).dot(g) for a in (x1, x2)]
    )
    a = gradient_form()
    f2 = a["HHg"] * (H * H * g) + a["Tgg"] * Tgg
    J = f2.jacobian(xs)
    return sp.factor(sp.expand(J[0, 1] - J[1, 0]))
