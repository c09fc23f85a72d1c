"""Heavy ball's modified flow and slow-manifold start to any order, by B-series (rooted trees).

Heavy ball x_{k+1} − (1+β) x_k + β x_{k−1} = h F(x_k) (F = −∇E, docs/modified_flows.md (M1))
has a smooth solution x_k = X(kh) with X' = f(X). Write f as a B-series,

    f = Σ_τ a(τ) h^{|τ|−1} F(τ),      F(•) = F,  F([τ₁,…,τ_m]) = F^{(m)}(F(τ₁),…,F(τ_m)),

over rooted trees τ with |τ| nodes (docs/modified_flows.md (M18)). Along X' = f, the
Lie derivative of an elementary differential is a sum over its nodes: D F(τ)·F(σ) =
Σ_{v ∈ τ} F(τ ∘_v σ), σ grafted as a new child of v (Leibniz' rule on F^{(m)}(…)). So the
derivatives X^{(n)} = D^{n−1}_f f are again B-series, and the order condition of
(T86), Σ_{n≥1} (1 + (−1)ⁿβ) hⁿ⁻¹/n! X^{(n)} = F, matched tree by tree, gives

    (1−β) a(τ) = δ_{τ,•} − Σ_{n≥2} (1 + (−1)ⁿβ)/n! X^{(n)}(τ)                          (M19)

whose right side only involves a on trees with fewer nodes than τ: a recursion in |τ|
(:func:`derive_flow`). Nothing here is 1-D: every tree is its own unknown, so the result
holds for every E in every dimension (the 1-D shortcut of igrm.modified_series stops at
three nodes). The slow start x_{−1} = X(−h) = x₀ + Σ_n (−h)ⁿ/n! X^{(n)}(x₀) is the B-series
s(τ) = Σ_{n=1}^{|τ|} (−1)ⁿ/n! X^{(n)}(τ), times h^{|τ|} ((M20), :func:`derive_start`).

Gradient form (F = −g, g = ∇E): F^{(m)} = −∇^{m+1}E, so F(τ) = (−1)^{|τ|} G(τ) with
G(•) = g, G([τ₁,…,τ_m]) = ∇^{m+1}E[G(τ₁),…,G(τ_m)] (e.g. G([•]) = Hg, G([•,•]) = T[g,g]).

Trees are nested tuples with sorted children (the leaf is ``()``), so equal trees compare
equal. The coefficients to R = 5 are cached as generated code in igrm.order_r_coefficients
(:func:`generated_table_source` writes it; a test regenerates and compares).
"""

from __future__ import annotations

import math
from functools import cache

import sympy as sp

beta = sp.Symbol("beta")
LEAF: tuple = ()


def nodes(tree: tuple) -> int:
    """|τ|, the number of nodes."""
    return 1 + sum(nodes(c) for c in tree)


def _canon(children) -> tuple:
    return tuple(sorted(children))


def graft(tree: tuple, sub: tuple) -> list[tuple]:
    """Every tree obtained by attaching ``sub`` as a new child of one node of ``tree``
    (one entry per node, with repeats): the terms of D F(τ)·F(σ)."""
    out = [_canon((*tree, sub))]
    for i, child in enumerate(tree):
        for g in graft(child, sub):
            out.append(_canon((*tree[:i], g, *tree[i + 1 :])))
    return out


@cache
def trees(n: int) -> tuple[tuple, ...]:
    """All rooted trees with n nodes, sorted (1, 1, 2, 4, 9, 20 for n = 1…6)."""
    if n == 1:
        return (LEAF,)
    found = set()
    for m in range(1, n):
        for t in trees(m):
            for s in trees(n - m):
                found.update(graft(t, s))
    return tuple(sorted(t for t in found if nodes(t) == n))


def is_chain(tree: tuple) -> bool:
    """A tall tree (every node has at most one child): F'F'…F' F = −(−H)^{n−1} g type terms,
    the only ones that survive on a quadratic E."""
    return len(tree) == 0 or (len(tree) == 1 and is_chain(tree[0]))


def lie(b: dict, a: dict, max_nodes: int) -> dict:
    """The B-series of D(Σ b(τ)F(τ))·(Σ a(σ)F(σ)), trees with more than max_nodes dropped."""
    out: dict = {}
    for t, bt in b.items():
        for s, as_ in a.items():
            if nodes(t) + nodes(s) > max_nodes:
                continue
            for g in graft(t, s):
                out[g] = out.get(g, 0) + bt * as_
    return out


def _derivatives(a: dict, n_max: int, max_nodes: int) -> list[dict]:
    """[X', X'', …, X^(n_max)] along X' = Σ a(τ)F(τ), as B-series truncated at max_nodes."""
    X = [{t: c for t, c in a.items() if nodes(t) <= max_nodes}]
    for _ in range(n_max - 1):
        X.append(lie(X[-1], a, max_nodes))
    return X


def _weight(n: int, b=beta):
    """(1 + (−1)ⁿ β)/n!, the factor of X^{(n)} in the order condition (T86)."""
    return (1 + (-1) ** n * b) / sp.factorial(n)


@cache
def derive_flow(R: int) -> dict:
    """a(τ) for every tree with ≤ R nodes (the order-R flow: f₀ … f_{R−1}), SymPy in ``beta``,
    by the recursion (M19)."""
    a: dict = {}
    for N in range(1, R + 1):
        X = _derivatives(a, N, N) if a else [{}]
        for t in trees(N):
            rest = sum((_weight(n) * X[n - 1].get(t, 0) for n in range(2, N + 1)), sp.Integer(0))
            a[t] = sp.factor(sp.cancel(((1 if t == LEAF else 0) - rest) / (1 - beta)))
    return a


@cache
def derive_start(R: int) -> dict:
    """s(τ), |τ| ≤ R: x_{−1} − x₀ = Σ s(τ) h^{|τ|} F(τ)(x₀) + O(h^{R+1}) on the slow manifold
    of the order-R flow ((M20): X(−h) = x₀ + Σ_n (−h)ⁿ/n! X^{(n)})."""
    X = _derivatives(derive_flow(R), R, R)
    s: dict = {}
    for n, Xn in enumerate(X, start=1):
        for t, c in Xn.items():
            s[t] = s.get(t, 0) + sp.Integer(-1) ** n / sp.factorial(n) * c
    return {t: sp.factor(sp.cancel(c)) for t, c in s.items()}


def gradient_coefficients(coef: dict) -> dict:
    """The same B-series for F = −g in terms of G(τ): multiply by (−1)^{|τ|}."""
    return {t: sp.factor((-1) ** nodes(t) * c) for t, c in coef.items()}


# ----------------------------------------------------------------------------------------
# the cached table (generated code, igrm/order_r_coefficients.py)
# ----------------------------------------------------------------------------------------

TABLE_ORDER = 5


def _as_row(c, n: int) -> tuple[int, tuple[int, ...]]:
    """c = P(β)/(D (1−β)^{2n−1}) → (D, integer coefficients of P from β⁰ up)."""
    p = sp.Poly(sp.cancel(c * (1 - beta) ** (2 * n - 1)), beta)
    if not p.domain.is_QQ and not p.domain.is_ZZ:
        raise ValueError(f"coefficient {c} is not a polynomial over (1-beta)^{2 * n - 1}")
    coeffs = [sp.Rational(x) for x in reversed(p.all_coeffs())]
    D = math.lcm(*[int(x.q) for x in coeffs])
    return D, tuple(int(x * D) for x in coeffs)


def generated_table_source(R: int = TABLE_ORDER) -> str:
    """The source of igrm/order_r_coefficients.py: FLOW and START, tree -> (D, P) with
    coefficient P(β)/(D (1−β)^{2|τ|−1}) of F(τ) (not the gradient form)."""
    lines = [
        '"""GENERATED by igrm.order_r_flows.generated_table_source (do not edit; tests regenerate it).',
        "",
        "Heavy ball's modified flow f = Σ_τ a(τ) h^{|τ|−1} F(τ) and slow start",
        "x_{−1} − x₀ = Σ_τ s(τ) h^{|τ|} F(τ), F = −∇E (docs/modified_flows.md (M19), (M20)).",
        "Each entry: tree -> (D, P), coefficient = Σ_i P[i] β^i / (D (1−β)^{2|τ|−1}).",
        '"""',
        "",
        f"ORDER = {R}",
    ]
    for name, coef in (("FLOW", derive_flow(R)), ("START", derive_start(R))):
        lines.append(f"{name} = {{")
        for t in sorted(coef, key=lambda t: (nodes(t), t)):
            D, P = _as_row(coef[t], nodes(t))
            lines.append(f"    {t!r}: ({D}, {P!r}),")
        lines.append("}")
    return "\n".join(lines) + "\n"


def table_coefficient(row, n: int, b=beta):
    """The coefficient of a table row (D, P) of a tree with n nodes, at β = b."""
    D, P = row
    return sum(p * b**i for i, p in enumerate(P)) / (D * (1 - b) ** (2 * n - 1))


# ----------------------------------------------------------------------------------------
# the flow of a concrete loss (SymPy expressions in its coordinates)
# ----------------------------------------------------------------------------------------


def _diff(e, v):
    """∂e/∂v for a SymPy expression or a polynomial-ring element (much faster on big polynomials)."""
    return e.diff(v) if hasattr(e, "ring") else sp.diff(e, v)


class Elementary:
    """G(τ) for a loss E(xs) given as a SymPy expression or an element of a polynomial ring
    whose generators include ``xs``: G(•) = ∇E, G([τ₁,…,τ_m]) =
    ∇^{m+1}E[G(τ₁),…,G(τ_m)], each a list of SymPy expressions (cached per tree)."""

    def __init__(self, E, xs):
        self.xs = tuple(xs)
        self.g = [_diff(E, v) for v in self.xs]
        self._d: dict = {}
        self._G: dict = {}

    def _deriv(self, i: int, idx: tuple):
        """∂^{|idx|} g_i / ∂x_idx (idx sorted)."""
        key = (i, idx)
        if key not in self._d:
            self._d[key] = self.g[i] if not idx else _diff(self._deriv(i, idx[:-1]), self.xs[idx[-1]])
        return self._d[key]

    def __call__(self, tree: tuple) -> list:
        if tree not in self._G:
            if tree == LEAF:
                self._G[tree] = list(self.g)
            else:
                kids = [self(c) for c in tree]
                self._G[tree] = [self._contract(i, kids) for i in range(len(self.xs))]
        return self._G[tree]

    def _contract(self, i: int, kids: list):
        """Σ_idx ∂_idx g_i Π_l kids[l][idx_l]; the product is formed only where the derivative
        is nonzero (most are, for polynomial losses, zero), and the derivative is extended
        index by index so a zero prunes the whole branch."""
        d = len(self.xs)
        total = sp.Integer(0)

        def rec(level, idx, factors):
            nonlocal total
            key = tuple(sorted(idx))
            if self._deriv(i, key) == 0:
                return
            if level == len(kids):
                term = self._deriv(i, key)
                for f in factors:
                    term = term * f
                total += term
                return
            for j in range(d):
                if kids[level][j] != 0:
                    rec(level + 1, (*idx, j), (*factors, kids[level][j]))

        rec(0, (), ())
        return total


def flow_expression(E, xs, R: int, h, b=beta, drop=()):
    """The order-R modified field f = Σ_{|τ|≤R} a(τ)(−1)^{|τ|} h^{|τ|−1} G(τ) of E(xs) as SymPy
    expressions (docs/modified_flows.md (M19)); trees in ``drop`` left out (ablations)."""
    G = Elementary(E, xs)
    a = gradient_coefficients(derive_flow(R))
    out = [sp.Integer(0)] * len(xs)
    for t, c in a.items():
        if t in drop:
            continue
        ct = c.subs(beta, b) * h ** (nodes(t) - 1)
        out = [o + ct * gi for o, gi in zip(out, G(t))]
    return out


def start_expression(E, xs, R: int, h, b=beta):
    """x_{−1} − x₀ on the slow manifold of the order-R flow, Σ_{|τ|≤R} s(τ)(−1)^{|τ|} h^{|τ|} G(τ)
    ((M20); error O(h^{R+1}))."""
    G = Elementary(E, xs)
    s = gradient_coefficients(derive_start(R))
    out = [sp.Integer(0)] * len(xs)
    for t, c in s.items():
        ct = c.subs(beta, b) * h ** nodes(t)
        out = [o + ct * gi for o, gi in zip(out, G(t))]
    return out


def recursion_residual(E, xs, R: int, b, field=None):
    """Coefficients of h⁰ … h^{R−1} of residual/h, residual = X(t+h) − (1+β)X(t) + βX(t−h) +
    h∇E(X(t)), along X' = f (the order-R field, or ``field``), by Jacobian products (no trees):
    all zero iff f solves heavy ball's recursion to O(h^R) on this E (an independent check of
    (M19), as modified_series.check_flow_2d is of (T87))."""
    h = sp.Symbol("h")
    xs = list(xs)
    f = field if field is not None else flow_expression(E, xs, R, h, b)
    f = sp.Matrix([sp.expand(e) for e in f])
    M = sp.Matrix(xs)

    def trunc(e):
        e = sp.expand(e)
        return sp.Add(*[e.coeff(h, k) * h**k for k in range(R)])

    X = [f.applyfunc(trunc)]
    for _ in range(R - 1):
        X.append((X[-1].jacobian(M) * f).applyfunc(trunc))
    g = sp.Matrix([sp.diff(E, v) for v in xs])
    res = g + sum(
        (_weight(n, sp.nsimplify(b)) * h ** (n - 1) * X[n - 1] for n in range(1, R + 1)), sp.zeros(len(xs), 1)
    )
    res = res.applyfunc(trunc)
    return [res.applyfunc(lambda e: sp.expand(e.coeff(h, k))) for k in range(R)]
