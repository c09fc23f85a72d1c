"""Range of validity of the modified-flow claims on networks: the expansion parameters at a
measured sharpness, the declared range of the explicit-baseline claim, and the 1-D rate
comparison behind its threshold (docs/theory.md (T61)–(T63); docs/igrm_baseline.md, "Range of
validity"). No torch: the claims and figures (science environment) use it; λ_max itself
is measured by :mod:`igrm.sharpness`.
"""

from __future__ import annotations

import math


def expansion_parameters(*, lam: float, h: float, beta: float) -> dict[str, float]:
    """The expansion parameters at sharpness ``lam`` (its magnitude) of a run with raw
    step ``h`` and momentum ``beta`` (η = h/(1−β), μ = βη/(2(1−β))):

    - ``epsilon`` = h|λ|/(1−β)² (docs/theory.md (T11), (T45), (T51));
    - ``penalty_curvature`` = 2μ|λ| (explicit baseline; (T45); = β·ε, (T61));
    - ``stability`` = η(|λ| + 2μλ²), the explicit baseline's step times its curvature
      along the top eigenvector, third derivatives neglected ((T62)).
    """
    a = abs(float(lam))
    beta = float(beta)
    eta = float(h) / (1 - beta)
    mu = beta * eta / (2 * (1 - beta))
    return {
        "epsilon": float(h) * a / (1 - beta) ** 2,
        "penalty_curvature": 2 * mu * a,
        "stability": eta * (a + 2 * mu * a * a),
    }


def epsilon_bound(*, beta: float, max_epsilon: float) -> float:
    """min(max_epsilon, 1/(1+√β)²): the largest ε at which a heavy-ball claim is judged,
    the real-root bound (docs/theory.md (T51)) capped by the config ((T63))."""
    return min(float(max_epsilon), 1.0 / (1.0 + math.sqrt(float(beta))) ** 2)


def in_declared_range(
    *, epsilon: float, penalty_curvature: float, beta: float, max_epsilon: float, max_penalty_curvature: float
) -> bool:
    """The declared range of the explicit-baseline claim at one point (docs/theory.md (T63)):
    ε ≤ min(max_epsilon, 1/(1+√β)²) and 2μλ ≤ max_penalty_curvature."""
    return float(epsilon) <= epsilon_bound(beta=beta, max_epsilon=max_epsilon) and float(penalty_curvature) <= float(
        max_penalty_curvature
    )


def rate_mismatch(*, beta: float, epsilon: float) -> dict[str, float]:
    """On E = λx²/2 at ε = hλ/(1−β)² (λ > 0): the per-step contraction of the explicit
    baseline, 1 − (1−β)ε(1+βε) ((T62)), and of plain GD at η, 1 − (1−β)ε, against GD+M's
    slow root r₊ = [b + √(b² − 4β)]/2, b = 1 + β − (1−β)²ε ((T51)), as relative errors
    of the log-rates: ``explicit`` = δ_ex of (T63), ``gd`` the same for plain GD. NaN where
    r₊ is complex (ε above the real-root bound) or a factor is ≤ 0."""
    beta, eps = float(beta), float(epsilon)
    b = 1 + beta - (1 - beta) ** 2 * eps
    disc = b * b - 4 * beta
    if disc < 0:
        return {"explicit": math.nan, "gd": math.nan, "slow_root": math.nan}
    r = (b + math.sqrt(disc)) / 2
    f_ex = 1 - (1 - beta) * eps * (1 + beta * eps)
    f_gd = 1 - (1 - beta) * eps

    def rel(f):
        return math.log(f) / math.log(r) - 1 if f > 0 and 0 < r < 1 else math.nan

    return {"explicit": rel(f_ex), "gd": rel(f_gd), "slow_root": r}
