"""Is the order-R flow of heavy ball a gradient flow? (docs/modified_flows.md §8.4, (M22)).

Ansatz, order by order in h (m = 1 − β):

    f = −P ∇Ẽ + O(h^R),   P = I + Σ_{k≥1} μ_k (hH)^k,   Ẽ = E/m + Σ_{j≥1} h^j Ẽ_j,
    Ẽ_j = Σ_i c_{j,i} ⟨G(σ_i), G(τ_i)⟩   (|σ_i| + |τ_i| = j + 1)

— a "mobility" P that is a power series in the Hessian (the family of the O(h³) result,
P = I + h²H²/(6m²)) and a modified loss built from every scalar invariant of the right
degree (cutting an edge of a free tree with j + 1 vertices gives such a pair of rooted
trees, so every invariant is in the span). Matched on a concrete 2-D polynomial loss
whose H and T[g] do not commute, the order-h^n conditions are polynomial identities in
the coordinates: equations in (μ, c), bilinear through μ_k c_{n−k}. :func:`gradient_flow_test`
solves them with SymPy; "no solution" on one loss means no universal (E-independent)
coefficients exist in this family. Also the Euclidean test: the curl of each f_n.
"""

from __future__ import annotations

import sympy as sp

from . import order_r_flows as T

X1, X2 = sp.symbols("x1 x2")
#: the test losses: 2-D polynomials with [H, T[g]] ≠ 0; the unknowns are shared, so a solution
#: is a candidate universal one (coefficients functions of β only)
TEST_LOSS = X1**3 / 3 + X1 * X2**2 / 2 + X2**2 / 2 + X1**2 * X2**2 / 7
#: the β of the tests (rational, so the identities are exact)
TEST_BETA = sp.Rational(4, 5)
TEST_LOSSES = (TEST_LOSS, X1**4 / 4 + X1 * X2**2 + X2**3 / 5 + X1**2 / 3)


def _field_terms(E, xs, R: int, b):
    """f_n (n < R) of the order-R flow on E, as lists of SymPy expressions, β = b."""
    G = T.Elementary(E, xs)
    a = T.gradient_coefficients(T.derive_flow(R))
    f = [[sp.Integer(0)] * len(xs) for _ in range(R)]
    for t, c in a.items():
        n = T.nodes(t) - 1
        f[n] = [fi + c.subs(T.beta, b) * gi for fi, gi in zip(f[n], G(t))]
    return G, f


def curl(v, xs=(X1, X2)):
    """∂₁v₂ − ∂₂v₁ of a 2-D field: zero iff v is a gradient (Euclidean metric)."""
    return sp.expand(sp.diff(v[1], xs[0]) - sp.diff(v[0], xs[1]))


def euclidean_curls(R: int = 5, b=TEST_BETA, E=TEST_LOSS):
    """[curl f_n for n < R] on E: f_n is a Euclidean gradient iff its curl vanishes."""
    _, f = _field_terms(E, (X1, X2), R, b)
    return [curl(fn) for fn in f]


def gradient_flow_test(R: int, b=TEST_BETA, losses=TEST_LOSSES):
    """Solve the ansatz of the module docstring through h^{R−1} on every loss of ``losses``
    at once (xs = x1, x2; shared unknowns).

    Returns {"solvable": bool, "solution": dict of the unknowns (one solution; free ones
    left symbolic), "mu": [μ_1, …], "orders": [(n, solvable)]}: where the ansatz fails,
    ``orders`` says at which power of h.
    """
    xs = (X1, X2)
    m = 1 - b
    mu = sp.symbols(f"mu1:{R}")
    per = []
    for E in losses:
        G, f = _field_terms(E, xs, R, b)
        H = sp.Matrix(2, 2, lambda i, k, E=E: sp.diff(E, xs[i], xs[k]))
        per.append({"G": G, "f": f, "H": H, "grads": [[sp.diff(E / m, v) for v in xs]]})
    unknowns: list = []
    branches: list = [{}]  # every solution branch so far (a quadratic gauge can fork them)
    report = []
    for n in range(1, R):
        # the same invariants (trees) on every loss, one coefficient each
        pairs = [(sig, tau) for s in range(1, n + 1) for sig in T.trees(s) for tau in T.trees(n + 1 - s) if sig <= tau]
        c = sp.symbols(f"c{n}_0:{len(pairs)}")
        unknowns += [mu[n - 1], *c]
        eqs = []
        for L in per:
            G = L["G"]
            En = sum((ci * sp.expand(sum(a * q for a, q in zip(G(sg), G(tu)))) for ci, (sg, tu) in zip(c, pairs)), 0)
            L["grads"].append([sp.diff(En, v) for v in xs])
            # order h^n of P∇Ẽ: Σ_{k=0}^{n} μ_k H^k ∇Ẽ_{n−k}
            total = sp.Matrix(L["f"][n]) + sp.Matrix(L["grads"][n])
            for k in range(1, n + 1):
                total += mu[k - 1] * (L["H"] ** k) * sp.Matrix(L["grads"][n - k])
            for comp in total:
                eqs += sp.Poly(sp.expand(comp), *xs).coeffs()
        grown = []
        for sol in branches:
            sub = [sp.expand(e.subs(sol)) for e in eqs]
            for new in sp.solve([e for e in sub if e != 0], [u for u in unknowns if u not in sol], dict=True) or (
                [{}] if all(e == 0 for e in sub) else []
            ):
                grown.append({k: sp.simplify(v.subs(new)) for k, v in sol.items()} | new)
        report.append((n, bool(grown)))
        if not grown:
            sol = branches[0]
            return {"solvable": False, "solution": sol, "mu": [sol.get(u, u) for u in mu], "orders": report}
        branches = grown
    sol = branches[0]
    return {"solvable": True, "solution": sol, "mu": [sol.get(u, u) for u in mu], "orders": report}


# ----------------------------------------------------------------------------------------
# heavy ball as gradient descent on a modified loss (M23)
# ----------------------------------------------------------------------------------------


def _h_part(p, k: int, lo: bool = False):
    """Of a ring element p (last generator h): the terms with h-degree exactly k (as a
    polynomial without h), or (lo=True) all terms with h-degree < k."""
    ring = p.ring
    if lo:
        return ring.from_dict({mon: c for mon, c in p.items() if mon[-1] < k})
    return ring.from_dict({(*mon[:-1], 0): c for mon, c in p.items() if mon[-1] == k})


def _potential(V, gens):
    """A potential of a curl-free polynomial field V (∇φ = V): φ = ∫₀¹ V(sx)·x ds, monomial
    by monomial (x^α x_i / (|α| + 1))."""
    ring = V[0].ring
    out = ring.zero
    for i, (v, g) in enumerate(zip(V, gens)):
        for mon, c in v.items():
            d = sum(mon[: len(gens)])
            out += ring.from_dict({mon: c / (d + 1)}) * g
    return out


def _gd_field(Et, gens, R: int):
    """Gradient descent's modified field on Ẽ (a ring element), (M19) at β = 0, through
    h^{R−1}: Σ_τ a₀(τ)(−1)^{|τ|} h^{|τ|−1} G_Ẽ(τ)."""
    ring, h = Et.ring, Et.ring.gens[-1]
    G = T.Elementary(Et, gens)
    a = T.gradient_coefficients(T.derive_flow(R))
    out = [ring.zero] * len(gens)
    for t, c in a.items():
        ct = ring.domain.convert(c.subs(T.beta, 0)) * h ** (T.nodes(t) - 1)
        out = [_h_part(o + ct * gi, R, lo=True) for o, gi in zip(out, G(t))]
    return out


def modified_loss(E, xs, R: int, b):
    """Ẽ = E/m + h Ẽ₁ + … + h^{R−1}Ẽ_{R−1} such that gradient descent x ← x − h∇Ẽ has the
    modified flow of heavy ball (β = b, step h) on E to O(h^R) (M23), for a polynomial E(xs)
    with rational coefficients.

    Order by order: GD's field of Ẽ at h^n is D_n − ∇Ẽ_n, D_n from Ẽ₀…Ẽ_{n−1}; so
    ∇Ẽ_n = D_n − f_n(HB) must be a gradient. Returns (Ẽ as a SymPy expression in xs and
    the symbol h, or None where an order does not close; [curl of D_n − f_n, n = 1…R−1]
    (2-D; zero iff order n closes)).
    """
    h = sp.Symbol("h")
    domain = sp.RR if E.has(sp.Float) else sp.QQ  # least squares: float coefficients (no curl test needed)
    ring, *gens = sp.ring((*xs, h), domain)
    hg = gens[-1]
    gens = gens[:-1]
    Er = ring.from_expr(E)
    m = ring.domain.convert(1 - sp.nsimplify(b))
    Gh = T.Elementary(Er, gens)
    a = T.gradient_coefficients(T.derive_flow(R))
    f_hb = [ring.zero] * len(gens)
    for t, c in a.items():
        ct = ring.domain.convert(c.subs(T.beta, sp.nsimplify(b))) * hg ** (T.nodes(t) - 1)
        f_hb = [o + ct * gi for o, gi in zip(f_hb, Gh(t))]
    Et = Er * (1 / m)
    curls = []
    for n in range(1, R):
        gd = _gd_field(Et, gens, n + 1)
        V = [_h_part(g, n) - _h_part(f, n) for g, f in zip(gd, f_hb)]
        c = (V[1].diff(gens[0]) - V[0].diff(gens[1])) if len(gens) == 2 else ring.zero
        curls.append(c.as_expr())
        if c != 0:
            return None, curls
        Et = Et + hg**n * _potential(V, gens)
    return Et.as_expr(), curls
