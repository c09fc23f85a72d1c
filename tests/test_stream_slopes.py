"""igrm.stream_slopes: per-stream order slopes and their t-interval over streams (docs/mechanism.md
(S9)), its coverage simulated at the configured designs (orders.sgdm.streams = 16,
orders.sgdm_real.streams = 8; 8 step sizes), against the regression interval of the RMS
curve, which ignores the between-stream variance; and the orders claim rows that use it."""

import math

import numpy as np
import pandas as pd
import pytest

from igrm.pipeline.config import schema_defaults
from igrm.stream_slopes import coverage, per_stream_slopes, stream_interval


def test_per_stream_slopes_and_interval_are_exact_on_planted_powers():
    h = np.geomspace(5e-3, 8e-2, 8)
    p = np.array([1.9, 2.0, 2.1, 2.2])
    errs = 3.0 * h[None, :] ** p[:, None]
    np.testing.assert_allclose(per_stream_slopes(h, errs), p, rtol=1e-12)
    iv = stream_interval(p, 0.95)
    assert iv["estimate"] == pytest.approx(2.05) and iv["df"] == 3
    assert iv["se"] == pytest.approx(np.std(p, ddof=1) / 2)
    assert iv["hi"] - iv["estimate"] == pytest.approx(3.182446305284263 * iv["se"])  # t_{0.975,3}
    assert math.isnan(stream_interval([2.0], 0.95)["lo"])


@pytest.mark.parametrize("key, tails", [("orders/sgdm", "normal"), ("orders/sgdm_real", "t3")])
def test_stream_interval_coverage_at_the_configured_streams(key, tails):
    """At the config's streams (16, 8) and 8 step sizes, per-stream slopes that vary between
    streams (SD 0.1, normal or t₃ tails) and lack-of-fit noise: the stream interval covers
    the order at ≥ 0.92 (nominal 0.95; 600 replicates, MC SE ≈ 0.009); the RMS curve's
    regression interval does not (< 0.5)."""
    S = int(schema_defaults(key)["streams"])
    assert S == {"orders/sgdm": 16, "orders/sgdm_real": 8}[key]
    c = coverage(streams=S, n_h=8, level=0.95, reps=600, slope_sd=0.1, noise_sd=0.02, tails=tails, seed=3)
    assert c["stream"] >= 0.92, c
    assert c["naive"] < 0.5, c


def test_orders_claims_use_the_stream_interval_for_sgdm_rows():
    """A SGD+M slope row with per-stream columns: the verdict and the measured order come from
    the stream interval; a row without them keeps the regression interval."""
    from igrm.claims.orders import order_claims

    base = dict(
        problem="two_factor",
        beta=0.5,
        flow="SGD+M flow",
        window="all",
        primary=True,
        n_points=8,
        expected_slope=2.0,
        h_min=1e-3,
        h_max=1e-2,
        eps_max=0.05,
        min_error=1e-6,
        max_reference_error=1e-12,
    )
    rows = pd.DataFrame(
        [
            {
                **base,
                "comparison": "sgdm",
                "slope": 2.0,
                "slope_se": 0.001,
                "stream_slope": 2.02,
                "stream_slope_se": 0.1,
                "stream_df": 15.0,
            },
            {
                **base,
                "comparison": "sgdm_deterministic",
                "slope": 2.0,
                "slope_se": 0.001,
                "stream_slope": np.nan,
                "stream_slope_se": np.nan,
                "stream_df": np.nan,
            },
        ]
    )
    c = order_claims(rows, slope_tol=0.15, ci=0.95, max_epsilon=0.25, floor_factor=100).set_index("id")
    sg = c.loc["order/sgdm/two_factor/beta0.5/sgdm/sgdm_flow"]
    assert sg["measured"] == pytest.approx(2.02) and sg["verdict"] == "inconclusive"  # ±0.21 > 0.15
    assert sg["uncertainty"] == pytest.approx(2.131449545559323 * 0.1)  # t_{0.975,15}
    det = c.loc["order/sgdm/two_factor/beta0.5/sgdm_deterministic/sgdm_flow"]
    assert det["verdict"] == "reproduces" and det["measured"] == 2.0
