"""igrm.claims.summary: rows to paper claims, the one-word verdict, and the headline row."""

import pandas as pd
import pytest

from igrm.claims import COLUMNS, FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, row
from igrm.claims.summary import (
    GLOSSARY,
    PAPER_CLAIMS,
    assign,
    claim_verdict,
    deciding,
    detail_markdown,
    glossary,
    glossary_markdown,
    summarise,
    summary_markdown,
    summary_text,
)


def _table(rows):
    return pd.DataFrame(
        [row(i, f"claim {i}", "src", 0.0, m, 0.1, v, uncertainty=u) for i, m, u, v in rows], columns=COLUMNS
    )


def test_each_kind_of_row_maps_to_its_claim():
    ids = pd.Series(
        [
            "order/gdm/lstsq/beta0.5/naive/flow1",
            "order/gdm/lstsq/beta0.5/naive/flow2",
            "order/sgdm/two_factor/beta0.8/sgdm/sgdm_flow",
            "toy/flatter_minima/eta0.01",
            "toy/limit_matches_flow2/eta0.01/out_of_range",
            "cifar/obs3_acc_rises_with_beta/x/y",
            "noise/reg_ratio_slides/a/b",
            "noise/variance_ratio_theory/a",
        ]
    )
    assert list(assign(ids)) == [
        "gdm-flow1",
        "gdm-flow2",
        "sgdm-flow",
        "flatter-minima",
        "limit-point",
        "obs3",
        "noise-obs2",
        "noise-obs1-exact",
    ]
    with pytest.raises(ValueError, match="toy/new_kind.*PAPER_CLAIMS"):
        assign(pd.Series(["toy/new_kind/x"]))
    # a pattern that two entries claim is an error too
    doubled = PAPER_CLAIMS + tuple(c for c in PAPER_CLAIMS if c.key == "flatter-minima")
    with pytest.raises(ValueError, match="several claims"):
        assign(pd.Series(["toy/flatter_minima/eta0.01"]), doubled)


@pytest.mark.parametrize(
    "counts, verdict",
    [
        ({REPRODUCES: 3, OUT_OF_RANGE: 5}, REPRODUCES),
        ({REPRODUCES: 3, INCONCLUSIVE: 2, OUT_OF_RANGE: 5}, "reproduces where decided"),
        (
            {REPRODUCES: 3, FAILS: 1, INCONCLUSIVE: 2},
            "mixed (3 of 4 decided in-range rows reproduce, 1 does not; rows not corrected for multiplicity)",
        ),
        ({FAILS: 2, OUT_OF_RANGE: 1}, FAILS),
        ({INCONCLUSIVE: 1, OUT_OF_RANGE: 4}, INCONCLUSIVE),
        ({OUT_OF_RANGE: 4}, OUT_OF_RANGE),
    ],
)
def test_verdict_is_read_off_the_in_range_decided_rows(counts, verdict):
    assert claim_verdict(counts) == verdict


def test_summary_counts_headline_and_sections():
    table = _table(
        [
            ("toy/flatter_minima/eta0.01", 1.0, float("nan"), REPRODUCES),
            ("toy/flatter_minima/eta0.03", -0.2, float("nan"), FAILS),
            ("cifar/obs3_acc_rises_with_beta/d/m", 0.027, 0.099, INCONCLUSIVE),
            ("cifar/obs3_acc_rises_with_beta/d/m/out_of_range", 0.5, 0.1, OUT_OF_RANGE),
        ]
    )
    s = summarise(table).set_index("rows")
    flat, obs3 = s.loc["claims.md#flatter-minima"], s.loc["claims.md#obs3"]
    assert flat["verdict"].startswith("mixed (1 of 2 decided") and (flat[REPRODUCES], flat[FAILS]) == (1, 1)
    assert flat["headline_id"] == "toy/flatter_minima/eta0.03"  # a mixed claim shows the failing row
    assert (obs3["verdict"], obs3[INCONCLUSIVE], obs3[OUT_OF_RANGE]) == (INCONCLUSIVE, 1, 1)
    assert obs3["headline"].startswith(
        "fitted change of test accuracy across the β grid (mean of per-seed OLS fits; 0.01 = 1 pp) [d/m]: 0.027 ± 0.099"
    )
    assert len(s) == 2  # claims without rows are left out
    md = detail_markdown(table)
    assert md.index('<a id="flatter-minima">') < md.index('<a id="obs3">')
    assert md.count("| toy/flatter_minima/") == 2


def _rows(rows):
    """(id, expected, measured, uncertainty, verdict, tolerance, detail) -> a claims table."""
    return pd.DataFrame(
        [row(i, f"claim {i}", "src", e, m, t, v, uncertainty=u, detail=d) for i, e, m, u, v, t, d in rows],
        columns=COLUMNS,
    )


ORDER = "log-log fit over 4 step sizes; 95% interval of the order [a, b] (t, 2 df)"
SLOPE = "OLS slope {} accuracy per unit β over N=9 (level, seed) points, 95% t-interval"
TRAPS = [
    # flow (2) from rest: order 1 expected (the rest offset), listed first and failing: a control
    ("order/gdm/lstsq/beta0.5/naive/flow2", 1.0, 0.70, 0.02, FAILS, "±0.15 (equivalence)", ORDER),
    ("order/gdm/lstsq/beta0.5/manifold2/flow2", 2.0, 2.01, 0.01, REPRODUCES, "±0.15 (equivalence)", ORDER),
    ("order/gdm/lstsq/beta0.5/shifted/flow2", 2.0, 1.99, 0.01, REPRODUCES, "±0.15 (equivalence)", ORDER),
    # SGD+M: the ablation without the h/4 terms first
    ("order/sgdm/two_factor/beta0.8/sgdm/sgdm_flow_noreg", 1.0, 1.0, 0.02, INCONCLUSIVE, "±0.15 (equivalence)", ORDER),
    (
        "order/sgdm/two_factor/beta0.8/sgdm_deterministic/flow2",
        1.0,
        0.97,
        0.01,
        REPRODUCES,
        "±0.15 (equivalence)",
        ORDER,
    ),
    ("order/sgdm/two_factor/beta0.8/sgdm/sgdm_flow", 2.0, 2.0, 0.01, REPRODUCES, "±0.15 (equivalence)", ORDER),
    # the toy flatness claim fails at one η: that row heads the line, named as a Spearman ρ
    ("toy/flatter_minima/eta0.01", -1.0, -1.0, float("nan"), REPRODUCES, "Spearman ρ ≤ -0.9", "ρ"),
    ("toy/flatter_minima/eta0.03", -1.0, -0.71, float("nan"), FAILS, "Spearman ρ ≤ -0.9", "ρ"),
    # the limit point: the ratio row and an out-of-range row come first
    ("toy/flow2_closer_than_flow1", "< 1", 0.3, float("nan"), REPRODUCES, "ratio < 1", ""),
    ("toy/limit_matches_flow2/eta0.01/out_of_range", 0.0, 0.3, float("nan"), OUT_OF_RANGE, "0.02", ""),
    ("toy/limit_matches_flow2/eta0.01", 0.0, 0.004, float("nan"), REPRODUCES, "0.02", ""),
    # observation 2: an out-of-range row (runs still rising) before the judged one
    ("cifar/obs2_spread_falls_with_beta/d/m/eta0.1/out_of_range", "> 0", 0.2, float("nan"), OUT_OF_RANGE, "x", ""),
    ("cifar/obs2_spread_falls_with_beta/d/m/eta0.1", "> 0", 0.01, 0.02, INCONCLUSIVE, "x", SLOPE.format(0.01)),
    # a claim with only out-of-range rows: headed by one, and the line says it was not judged
    ("cifar/explicit_ge_gd/d/m/eta0.1_beta0.9/out_of_range", "> 0", 0.0, float("nan"), OUT_OF_RANGE, "ε ≤ 0.26", ""),
]
#: the row that must head each line, and what the line must name
HEADS = {
    "gdm-flow2": ("order/gdm/lstsq/beta0.5/manifold2/flow2", "fitted order p", "±0.15 (equivalence)", "95 %"),
    "sgdm-flow": ("order/sgdm/two_factor/beta0.8/sgdm/sgdm_flow", "fitted order p", "±0.15", "95 %"),
    "flatter-minima": ("toy/flatter_minima/eta0.03", "Spearman ρ", "ρ ≤ -0.9", "no interval"),
    "limit-point": ("toy/limit_matches_flow2/eta0.01", "relative error", "judged: 0.02", "no interval"),
    "obs2": ("cifar/obs2_spread_falls_with_beta/d/m/eta0.1", "OLS slope, accuracy per unit β", "> 0", "95 %"),
    "explicit": ("cifar/explicit_ge_gd/d/m/eta0.1_beta0.9/out_of_range", "accuracy", "out of range, not judged", ""),
}


def test_the_headline_of_each_line_is_its_deciding_row():
    table = _rows(TRAPS)
    s = summarise(table).set_index("rows")
    keyed = table.assign(key=assign(table["id"]))
    assert {k.removeprefix("claims.md#") for k in s.index} == set(HEADS)
    for key, (head, *words) in HEADS.items():
        line = s.loc[f"claims.md#{key}"]
        assert line["headline_id"] == head, key
        for w in words:
            assert w in line["headline"], (key, w, line["headline"])
        rows = keyed[keyed["key"] == key]
        if len(deciding(rows, key)):  # a row the claim predicts, in range
            assert head in set(deciding(rows, key)["id"]), key
    # the from-rest control fails, so the flow-(2) line is mixed, yet it is headed by order 2
    assert s.loc["claims.md#gdm-flow2", "verdict"].startswith("mixed (")  # with its row counts
    assert "expected 2.0" in s.loc["claims.md#gdm-flow2", "headline"]


def test_every_symbol_on_the_summary_is_in_its_glossary_once():
    import re

    table = _rows(TRAPS)
    summary = summarise(table)
    text = summary_text(summary)
    terms = glossary(text)
    md = summary_markdown(summary)
    assert md.index("| claim |") < md.index("**Glossary**")
    for t, _ in terms:
        assert glossary_markdown(summary).count(f"- **{t}**:") == 1
    defined = " ".join(t for t, _ in terms)
    greek = set(re.findall(r"[α-ωΔ-Ω]", text))
    assert greek, "the planted lines use β, ρ, ε, …"
    assert greek <= set(defined), f"undefined on the summary: {sorted(greek - set(defined))}"
    # every symbol the claims themselves use (all entries of PAPER_CLAIMS)
    every = " ".join(c.claim + " " + c.source for c in PAPER_CLAIMS)
    known = " ".join(t for t, _, _ in GLOSSARY)
    assert set(re.findall(r"[α-ωΔ-Ω]", every)) <= set(known)
    assert any(t == OUT_OF_RANGE for t, _ in terms)
