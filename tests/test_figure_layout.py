"""igrm.figures.style.layout_problems: the figure check finds what a reviewer would reject."""

import numpy as np
import pytest

from igrm.figures.style import figure, layout_problems


def test_a_clean_figure_has_no_problems():
    fig, axes = figure(1, 1)
    ax = axes[0, 0]
    ax.plot([0, 1, 2], [0, 1, 4], label="data")
    ax.set(xlabel="x (units)", ylabel="y (units)")
    fig.legend(loc="outside lower center")
    assert layout_problems(fig) == []


def test_missing_labels_legend_over_data_and_crowded_ticks_are_found():
    fig, axes = figure(1, 1)
    ax = axes[0, 0]
    x = np.linspace(0, 1, 200)
    ax.plot(x, np.full_like(x, 0.5), label="a line through the middle")
    ax.legend(loc="center", fontsize=14)  # right over the line
    ax.set_xticks(np.linspace(0, 1, 40), [f"{v:.4f}" for v in np.linspace(0, 1, 40)])
    problems = layout_problems(fig)
    assert any("no x-axis label" in p for p in problems), problems
    assert any("no y-axis label" in p for p in problems), problems
    assert any("legend covers" in p for p in problems), problems
    assert any("x tick labels" in p and "overlap" in p for p in problems), problems


def test_a_legend_over_bars_is_found():
    fig, axes = figure(1, 1)
    ax = axes[0, 0]
    ax.bar([0, 1, 2], [1.0, 1.0, 1.0], label="bars")
    ax.set(xlabel="method", ylabel="accuracy", ylim=(0, 1.05))
    ax.legend(loc="upper center")
    assert any("legend covers" in p for p in layout_problems(fig))


def test_mean_halfwidth_is_scipys_t_interval():
    """The figures' error bars: the two-sided t-interval of the mean (scipy as the reference)."""
    from scipy import stats as st

    from igrm.stats import mean_halfwidth

    v = np.array([0.61, 0.70, 0.66, 0.58])
    lo, hi = st.t.interval(0.9, len(v) - 1, loc=v.mean(), scale=st.sem(v))
    assert mean_halfwidth(v.std(ddof=1), len(v), 0.9) == pytest.approx((hi - lo) / 2, rel=1e-12)
    assert np.isnan(mean_halfwidth(0.1, 1, 0.95))
    np.testing.assert_allclose(
        mean_halfwidth(np.array([1.0, 2.0]), np.array([3, 5]), 0.95),
        [st.t.ppf(0.975, 2) / np.sqrt(3), 2 * st.t.ppf(0.975, 4) / np.sqrt(5)],
    )
