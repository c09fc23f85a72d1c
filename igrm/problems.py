"""Toy objectives with closed-form gradients, Hessians and Hessian-vector products.

All functions are float64 and vectorised: a parameter array ``w`` has shape
``(..., d)`` and every leading axis is a batch axis (many trajectories at once).
Equations refer to docs/theory.md §5, (T22)–(T28).

``grad_norm2_grad`` is ∇‖∇E‖² = 2 H ∇E, the gradient of the implicit
regulariser (docs/theory.md (T4)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def sigmoid(z):
    """Numerically stable logistic function σ(z) = 1 / (1 + e^{−z})."""
    z = np.asarray(z, dtype=np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


class Problem:
    """Interface shared by the toy problems.

    Subclasses implement ``loss``, ``grad`` and ``hess``; ``hvp`` and
    ``grad_norm2_grad`` follow from them.
    """

    dim: int = 2
    name: str = "problem"

    def loss(self, w):  # pragma: no cover - interface
        raise NotImplementedError

    def grad(self, w):  # pragma: no cover - interface
        raise NotImplementedError

    def hess(self, w):  # pragma: no cover - interface
        raise NotImplementedError

    def hvp(self, w, v):
        """H(w) v, batched: (..., d) x (..., d) -> (..., d)."""
        return np.einsum("...ij,...j->...i", self.hess(w), np.asarray(v, dtype=np.float64))

    def grad_norm2(self, w):
        """‖∇E(w)‖², the implicit regulariser without its coefficient."""
        g = self.grad(w)
        return np.sum(g * g, axis=-1)

    def grad_norm2_grad(self, w):
        """∇‖∇E‖² = 2 H ∇E (docs/theory.md (T4))."""
        return 2.0 * self.hvp(w, self.grad(w))

    def sharpness(self, w):
        """λ_max(∇²E(w)), the largest Hessian eigenvalue."""
        return np.linalg.eigvalsh(self.hess(w))[..., -1]

    #: whether the third-derivative tensor vanishes identically (quadratic losses)
    third_vanishes: bool = False

    def third(self, w, u, v):  # pragma: no cover - interface
        """T[u, v]_i = Σ_jk ∂_i∂_j∂_k E(w) u_j v_k, batched (docs/theory.md (T87))."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form third derivatives")


@dataclass(frozen=True)
class TwoFactor(Problem):
    """E(w1, w2) = ½ (y − w1 w2 x)²  (docs/theory.md (T22), (T23)).

    Minima: the hyperbola w1 w2 = y / x. At a minimum the Hessian is
    x² [[w2², w1 w2], [w1 w2, w1²]] with eigenvalues 0 and x² (w1² + w2²).
    """

    x: float = 1.0
    y: float = 0.6
    name: str = field(default="two_factor", init=False)
    dim: int = field(default=2, init=False)

    def residual(self, w):
        w = np.asarray(w, dtype=np.float64)
        return w[..., 0] * w[..., 1] * self.x - self.y

    def loss(self, w):
        return 0.5 * self.residual(w) ** 2

    def grad(self, w):
        w = np.asarray(w, dtype=np.float64)
        r = self.residual(w)
        return np.stack([r * self.x * w[..., 1], r * self.x * w[..., 0]], axis=-1)

    def hess(self, w):
        w = np.asarray(w, dtype=np.float64)
        w1, w2 = w[..., 0], w[..., 1]
        r = self.residual(w)
        x2 = self.x * self.x
        h11 = x2 * w2 * w2
        h22 = x2 * w1 * w1
        h12 = x2 * w1 * w2 + r * self.x
        return np.stack([np.stack([h11, h12], -1), np.stack([h12, h22], -1)], -2)

    def third(self, w, u, v):
        """T[u, v] in closed form (docs/theory.md (T92)): with r = x w1 w2 − y, ∇r = x (w2, w1),
        R = ∇²r = [[0, x], [x, 0]] and ∇³r = 0, E_ijk = R_ij r_k + R_ik r_j + R_jk r_i, so
        T[u, v] = (R u)(∇r·v) + (R v)(∇r·u) + ∇r (uᵀR v)."""
        w = np.asarray(w, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
        v = np.asarray(v, dtype=np.float64)
        x = self.x
        dr = np.stack([x * w[..., 1], x * w[..., 0]], axis=-1)
        Ru = x * u[..., ::-1]
        Rv = x * v[..., ::-1]
        rv = np.sum(dr * v, axis=-1)[..., None]
        ru = np.sum(dr * u, axis=-1)[..., None]
        uRv = np.sum(u * Rv, axis=-1)[..., None]
        return Ru * rv + Rv * ru + dr * uRv

    def sharpness_at_minimum(self, w):
        """x² (w1² + w2²): λ_max(∇²E) on the hyperbola of minima."""
        w = np.asarray(w, dtype=np.float64)
        return self.x**2 * (w[..., 0] ** 2 + w[..., 1] ** 2)


@dataclass(frozen=True)
class SigmoidFactor(Problem):
    """E(w1, w2) = ½ (y − w1 σ(w2 x))²  (docs/theory.md (T25), (T26)).

    With s = σ(w2 x), s' = s (1 − s), s'' = s' (1 − 2 s) and r = w1 s − y:
    ∇E = (r s, r w1 x s'),
    H11 = s², H12 = x s' (w1 s + r), H22 = (w1 x s')² + r w1 x² s''.
    Minima: w1 = y / σ(w2 x).
    """

    x: float = 1.0
    y: float = 0.6
    name: str = field(default="sigmoid", init=False)
    dim: int = field(default=2, init=False)

    def _parts(self, w):
        w = np.asarray(w, dtype=np.float64)
        w1 = w[..., 0]
        s = sigmoid(w[..., 1] * self.x)
        ds = s * (1.0 - s)
        r = w1 * s - self.y
        return w1, s, ds, r

    def loss(self, w):
        _, _, _, r = self._parts(w)
        return 0.5 * r * r

    def grad(self, w):
        w1, s, ds, r = self._parts(w)
        return np.stack([r * s, r * w1 * self.x * ds], axis=-1)

    def hess(self, w):
        w1, s, ds, r = self._parts(w)
        d2s = ds * (1.0 - 2.0 * s)
        x = self.x
        h11 = s * s
        h12 = x * ds * (w1 * s + r)
        h22 = (w1 * x * ds) ** 2 + r * w1 * x * x * d2s
        return np.stack([np.stack([h11, h12], -1), np.stack([h12, h22], -1)], -2)

    def minima_w1(self, w2):
        """The curve of minima, w1 = y / σ(w2 x)."""
        return self.y / sigmoid(np.asarray(w2, dtype=np.float64) * self.x)


@dataclass(frozen=True)
class LeastSquares(Problem):
    """E(w) = (1 / 2n) ‖A w − b‖²: ∇E = Aᵀ(A w − b)/n, H = AᵀA/n (constant).

    ``random(dim, n, cond, seed)`` draws a well-conditioned instance whose
    Hessian has eigenvalues spread geometrically in [1/cond, 1].
    """

    A: np.ndarray
    b: np.ndarray
    name: str = field(default="lstsq", init=False)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.A.shape[1]

    @classmethod
    def random(cls, dim: int = 5, n: int = 20, cond: float = 10.0, seed: int = 0) -> LeastSquares:
        if n < dim:
            raise ValueError(f"lstsq needs n >= dim, got n={n}, dim={dim}")
        rng = np.random.default_rng(seed)
        u, _ = np.linalg.qr(rng.standard_normal((n, dim)))
        v, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        eig = np.geomspace(1.0 / cond, 1.0, dim)  # eigenvalues of H = AᵀA / n
        A = u @ np.diag(np.sqrt(eig * n)) @ v.T
        b = rng.standard_normal(n)
        return cls(A=A, b=b)

    @property
    def H(self) -> np.ndarray:
        return self.A.T @ self.A / self.A.shape[0]

    @property
    def minimiser(self) -> np.ndarray:
        return np.linalg.lstsq(self.A, self.b, rcond=None)[0]

    def loss(self, w):
        r = np.asarray(w, dtype=np.float64) @ self.A.T - self.b
        return 0.5 * np.mean(r * r, axis=-1)

    def grad(self, w):
        r = np.asarray(w, dtype=np.float64) @ self.A.T - self.b
        return r @ self.A / self.A.shape[0]

    def hess(self, w):
        w = np.asarray(w, dtype=np.float64)
        return np.broadcast_to(self.H, w.shape[:-1] + self.H.shape)

    def hvp(self, w, v):
        return np.asarray(v, dtype=np.float64) @ self.H.T

    third_vanishes = True

    def third(self, w, u, v):
        """T = 0 (E is quadratic)."""
        return np.zeros(np.broadcast_shapes(np.shape(w), np.shape(u), np.shape(v)))


def make_problem(name: str, **params) -> Problem:
    """Build a toy problem by its config name (two_factor | sigmoid | lstsq)."""
    if name == "two_factor":
        return TwoFactor(**params)
    if name == "sigmoid":
        return SigmoidFactor(**params)
    if name == "lstsq":
        return LeastSquares.random(**params)
    raise ValueError(f"unknown toy problem {name!r}; expected one of two_factor, sigmoid, lstsq")
