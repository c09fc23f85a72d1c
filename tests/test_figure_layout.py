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


def test_a_legend_clipped_at_the_figure_edge_is_found():
    """The planted case: a figure legend wider than the figure (the curves figure's legend cut at
    both edges); the constrained layout cannot shrink it, and the saved image cuts it off."""
    fig, axes = figure(1, 1, width=3.0, height=2.5)
    ax = axes[0, 0]
    for i in range(8):
        ax.plot([0, 1], [i, i + 1], label=f"β=0.{i} (n=3, a long label for this run)")
    ax.set(xlabel="epoch", ylabel="test accuracy")
    fig.legend(loc="outside lower center", ncol=4)
    problems = layout_problems(fig)
    clipped = [p for p in problems if "figure legend" in p and "clipped" in p]
    assert clipped and "left" in clipped[0] and "right" in clipped[0], problems


def test_a_label_clipped_at_the_top_is_found_and_a_fitting_one_is_not():
    fig, axes = figure(1, 1, width=3.0, height=1.2)
    axes[0, 0].plot([0, 1], [0, 1])
    axes[0, 0].set(xlabel="β", ylabel="detrended SD of test accuracy over the last 5 epochs")
    assert any("y-label" in p and "top" in p for p in layout_problems(fig))
    fig, axes = figure(1, 1)
    axes[0, 0].plot([0, 1], [0, 1])
    axes[0, 0].set(xlabel="β", ylabel="SD (accuracy)")
    assert not [p for p in layout_problems(fig) if "clipped" in p]


def test_in_range_clips_only_what_passes_the_bound():
    from igrm.figures.style import ACCURACY, NONNEGATIVE, clip_note, in_range, yerr_in_range

    lo, hi, n = in_range([0.95, 0.5], [0.1, 0.1], ACCURACY)
    np.testing.assert_allclose(lo, [0.85, 0.4])
    np.testing.assert_allclose(hi, [1.0, 0.6])
    assert n == 1
    yerr, n = yerr_in_range([0.02, 0.3], [0.05, np.nan], NONNEGATIVE)
    np.testing.assert_allclose(yerr, [[0.02, 0.0], [0.05, 0.0]])
    assert n == 1 and clip_note(n, NONNEGATIVE) == "\n(1 interval clipped to ≥ 0)" and clip_note(0, ACCURACY) == ""


def _spread_runs(tmp_path):
    """Two seeds per β with very different spreads and accuracies (their t-intervals on 1 df pass
    0 and 1), and one run at β = 0.5 still rising over its last epochs (not judged by obs 2)."""
    from igrm.tidy.runs import tidy_runs

    from .test_cifar import csv, fake_run, roundtrip

    planted = []
    for beta in (0.0, 0.5, 0.9):
        for seed, (final, spread) in enumerate([(0.99, 0.001), (0.70, 0.05)]):
            planted.append(fake_run(beta=beta, eta=0.1, seed=seed, final=final, spread=spread))
    arrays, attrs, cfg = fake_run(beta=0.5, eta=0.1, seed=2, final=0.6, spread=0.01)
    arrays["test_acc"][-5:] += np.linspace(-0.3, 0.0, 5)  # rises by 0.3 over the window
    planted.append((arrays, attrs, cfg))
    return csv(tidy_runs(roundtrip(planted, tmp_path), spread_window=5))


def _errorbar_ends(ax):
    ys = [seg[:, 1] for c in ax.collections for seg in c.get_segments()]
    return np.concatenate(ys)


def test_spread_and_accuracy_intervals_stay_in_range_and_say_so(tmp_path):
    import matplotlib.pyplot as plt

    from igrm.figures.cifar import plot_acc_vs_beta, plot_spread

    frames = {k: v for k, v in _spread_runs(tmp_path).items() if k in ("epochs", "finals")}
    common = dict(spread_window=5, eta=0.1, dataset=None, model=None, ci=0.95)
    fig = plot_spread(**frames, **common, plateau_max_rise=0.05)
    ax = fig.axes[0]
    assert _errorbar_ends(ax).min() >= 0.0  # an SD: never below 0
    assert "clipped to ≥ 0" in ax.get_title()
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert any(lab.startswith("runs judged") for lab in labels), labels
    assert any(lab.startswith("runs not judged") for lab in labels), labels
    # the judged runs' points: 6 (the rising one drawn hollow apart)
    pts = {line.get_label(): len(line.get_xdata()) for line in ax.get_lines() if line.get_label().startswith("runs")}
    assert pts == {"runs judged (on a plateau)": 6, "runs not judged (rise > 0.05, or < 3 epochs)": 1}, pts
    assert not layout_problems(fig)
    plt.close(fig)
    fig = plot_acc_vs_beta(**frames, **common)
    assert _errorbar_ends(fig.axes[0]).max() <= 1.0
    assert "clipped to [0, 1]" in fig.axes[0].get_title()
    plt.close(fig)


def test_sharpness_vs_epoch_is_drawn_as_points_with_norms_kept_positive():
    """Sharpness is measured at a few epochs only (here 2): points, no line between them; the
    ‖∇E‖² panel's intervals end at 0 or above (a squared norm)."""
    import matplotlib.pyplot as plt

    from igrm.figures.sharpness_runs import plot_sharpness_runs

    from .test_sharpness_runs import _grid

    t = _grid(-1.0, seeds=3, noise=6.0)  # a large seed scatter: the t-intervals reach below 0
    fig = plot_sharpness_runs(finals=t["finals"], points=t["sharpness"], eta=None, dataset=None, model=None, ci=0.95)
    top = [ax for ax in fig.axes[:3]]
    for ax in top:
        series = [c for c in ax.containers if c.get_label().startswith("β=")]  # one errorbar per β
        assert series and all(c.lines[0].get_linestyle() == "None" for c in series), ax.get_ylabel()
    gn = next(ax for ax in top if "∇E" in ax.get_ylabel())
    assert _errorbar_ends(gn).min() >= 0.0
    plt.close(fig)


def _order_r_results():
    """Result files of the any-order study in the format its jobs write (igrm.order_r_study,
    igrm.order_r_limits), with planted errors c·h^R (ablation c·h^(R−1)) on a 4-point grid, a
    floor 1e−9, and, in the limit study, order 5 no better than order 4 at the largest ε."""
    h = np.array([1e-3, 2e-3, 4e-3, 8e-3])
    Rs = np.arange(1, 6)
    out = []
    for prob in ("two_factor", "sigmoid"):
        err = np.stack([np.stack([h**R, np.full_like(h, np.nan) if R == 1 else 3 * h ** (R - 1)]) for R in Rs])
        gd = np.stack([2 * h**R for R in Rs]) if prob == "two_factor" else np.full((5, len(h)), np.nan)
        arrays = {"h": h, "eps": 10 * h, "orders": Rs, "errors": err, "reference_error": np.full_like(err, 1e-16)}
        if prob == "two_factor":  # a floor at the order-5 error at the smallest h (ratio 1); sigmoid: 10
            arrays["reference_error"][-1, 0, 0] = 1e-15
        else:  # the order-5 line's own floor under the band: 1e-15 / 1e-17 = 100, not 1e-15 / 1e-16
            arrays["reference_error"][-1] = 1e-17
        out.append(({**arrays, "gd_errors": gd}, {"kind": "order_r", "problem": prob, "beta": 0.8}))
    eps = np.array([0.01, 0.02, 0.04, 0.08, 0.16])  # fitted to 0.08, range grid {0.08, 0.16}
    lim = np.stack([eps**R for R in Rs])
    lim[4, -1] = 2 * lim[3, -1]  # the ladder stops at ε = 0.16, beyond the fitted grid
    arrays = {
        "beta": np.full(5, 0.8),
        "eps": eps,
        "h": eps / 20,
        "errors": lim,
        "reference_error": np.full_like(lim, 1e-12),
        "fitted": eps <= 0.08,
        "in_range": eps >= 0.08,
    }
    arrays.update(flows=np.array([f"order-{R} flow" for R in Rs]), comparison=np.array("limit_slow"))
    out.append((arrays, {"kind": "limits", "problem": "two_factor"}))
    return out


def test_any_order_figures_show_orders_floor_and_where_the_ladder_stops():
    """The any-order figures (igrm.figures.orders_any_order) from the tidy tables of planted
    results: a line per order (and ablation), fitted orders at the line ends, the floor band with
    its margin in the title, the ladder's stop circled; nothing clipped or overlapping."""
    import matplotlib.pyplot as plt

    from igrm.figures.orders_any_order import (
        plot_orders_any_order,
        plot_orders_any_order_limits,
        plot_orders_any_order_loss,
    )
    from igrm.tidy.orders import orders_tables

    errors, slopes = orders_tables(_order_r_results())

    def ends(ax):
        return sorted(t.get_text() for t in ax.texts)

    fig = plot_orders_any_order(errors, slopes)
    assert len(fig.axes) == 2 and not layout_problems(fig)
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 9 and ends(ax) == [
        "(1.00)",
        "(2.00)",
        "(3.00)",
        "(4.00)",
        "1.00",
        "2.00",
        "3.00",
        "4.00",
        "5.00",
    ]
    assert "every error ≥ 1× its own reference floor" in ax.get_title() and ax.get_ylim()[0] < 1e-15
    # the sigmoid's order-5 line has its own (longdouble) floor 100x under the band: its ratio counts
    assert "every error ≥ 100× its own reference floor" in fig.axes[1].get_title()
    plt.close(fig)
    fig = plot_orders_any_order_loss(errors, slopes)  # the sigmoid has no modified loss: one panel
    assert len(fig.axes) == 1 and ends(fig.axes[0]) == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    assert "floor" not in fig.axes[0].get_title() and not layout_problems(fig)
    plt.close(fig)
    fig = plot_orders_any_order_limits(errors, slopes, range_tol=1e-3)
    assert len(fig.axes) == 2  # the errors, and the gain of each added order
    top, gain = fig.axes
    # fitted on the fitted grid only (exact orders), the range points drawn hollow beyond it
    assert ends(top) == ["1.00", "2.00", "3.00", "4.00", "5.00"]
    hollow = [ln for ln in top.get_lines() if ln.get_markerfacecolor() == "none" and len(ln.get_xdata())]
    assert len(hollow) == 5 and all(list(ln.get_xdata()) == pytest.approx([0.08, 0.16]) for ln in hollow)
    assert any("declared accuracy" in ln.get_label() for ln in top.get_lines())
    (stop,) = [ln for ln in gain.get_lines() if "ladder stops" in ln.get_label()]
    assert list(stop.get_xdata()) == pytest.approx([0.16])
    assert layout_problems(fig) == []
    plt.close(fig)
