"""igrm.claims.summary: rows to paper claims, the one-word verdict, and the headline row."""

import pandas as pd
import pytest

from igrm.claims import COLUMNS, FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, row
from igrm.claims.summary import PAPER_CLAIMS, assign, claim_verdict, detail_markdown, summarise


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
    assert obs3["headline"] == "0.027 ± 0.099 (expected 0.0)"
    assert len(s) == 2  # claims without rows are left out
    md = detail_markdown(table)
    assert md.index('<a id="flatter-minima">') < md.index('<a id="obs3">')
    assert md.count("| toy/flatter_minima/") == 2
