"""One line per claim of the paper: the claims summary that opens the report.

The claims table (igrm.claims) has one row per measured cell; a reader wants one line per
*claim*: which paper claim, how many of its rows reproduce / do not / are inconclusive /
are out of the theory's range, one headline number with its interval, and where the
detail rows are. :data:`PAPER_CLAIMS` maps row ids to claims (a row id is
``<part>/<claim>/<cell…>``); every row of a claims table must map to exactly one entry, so
a new kind of row cannot silently drop out of the summary (:func:`assign` raises).

The one-word verdict of a claim (:func:`claim_verdict`) is read off its in-range decided
rows only: out-of-range rows are findings about where the theory applies, never evidence
for or against it (docs/theory.md (T45)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from . import FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, VERDICTS

MIXED = "mixed"
#: some in-range rows reproduce, none fails, some are inconclusive: the rows are not tested
#: jointly (no correction over a claim's rows), so the line does not read as a plain "reproduces"
PARTLY = "reproduces where decided"
SUMMARY_COLUMNS = ["claim", "source", "verdict", *VERDICTS, "headline", "headline_id", "rows"]


@dataclass(frozen=True)
class PaperClaim:
    key: str  # anchor of its section in claims.md
    claim: str  # one line, as a reader would state it
    source: str  # where the paper (or the later literature) makes it
    ids: str  # regular expression on the row id (re.fullmatch)
    headline: str = ""  # regular expression (re.search) preferring the row that speaks for the claim


PAPER_CLAIMS: tuple[PaperClaim, ...] = (
    PaperClaim(
        "gdm-flow1",
        "GD+M follows the gradient flow of E at η = h/(1−β) to first order in h (flow (1))",
        "paper Thm 3.1 (leading order); docs/theory.md (T5)",
        r"order/gdm/.*/flow1",
    ),
    PaperClaim(
        "gdm-flow2",
        "GD+M follows flow (2), E plus the (1+β)/(1−β)-strengthened IGR term, to second order",
        "paper Thm 3.1; docs/theory.md (T6)",
        r"order/gdm/.*/flow2",
    ),
    PaperClaim(
        "flow3-order",
        "beyond the paper: GD+M follows the O(h³) modified flow to third order, and loses "
        "the order without its third-derivative term",
        "docs/theory.md (T86)–(T94)",
        r"order/higher/[^/]+/[^/]+/(manifold3|shifted3)/.*",
        headline=r"/flow3$",
    ),
    PaperClaim(
        "series-orders",
        "beyond the paper: on a quadratic loss the order-R truncations of the exact modified flow have error order R",
        "docs/theory.md (T91)",
        r"order/higher/[^/]+/[^/]+/series/.*",
    ),
    PaperClaim(
        "flow3-limits",
        "beyond the paper: the limit sharpness predicted by each flow order, error O(h^order)",
        "docs/theory.md (T95)",
        r"order/higher/[^/]+/[^/]+/limit/.*",
    ),
    PaperClaim(
        "sgdm-flow",
        "SGD+M follows the piecewise flow of the historical losses G_k (order 2 with the h/4 terms, 1 without)",
        "paper Thm 4.1; docs/theory.md (T19)",
        r"order/sgdm/.*",
    ),
    PaperClaim(
        "flatter-minima",
        "at a fixed effective learning rate, larger β ends at flatter minima (toy)",
        "slides, two-factor toy figure",
        r"toy/flatter_minima(/.*)?",
    ),
    PaperClaim(
        "limit-point",
        "GD+M converges where flow (2) predicts (closer than flow (1))",
        "paper §3; docs/theory.md (T6), (T52)",
        r"toy/(limit_matches_flow2|flow2_closer_than_flow1|limit_convergence)(/.*)?",
    ),
    PaperClaim(
        "igr-beta0",
        "at β = 0 flow (2) is Barrett & Dherin's IGR flow, O(η²) close to GD",
        "Barrett & Dherin 2021; docs/theory.md (T53)",
        r"toy/igr_order_beta0(/.*)?",
    ),
    PaperClaim(
        "obs1",
        "observation 1: plain SGD's test accuracy rises with the learning rate",
        "slides, observation 1",
        r"cifar/obs1_[^/]*(/.*)?",
    ),
    PaperClaim(
        "obs2",
        "observation 2: the epoch-to-epoch spread of test accuracy falls as β rises",
        "slides, observation 2",
        r"cifar/obs2_[^/]*(/.*)?",
    ),
    PaperClaim(
        "obs3",
        "observation 3: test accuracy rises with β at a fixed effective learning rate",
        "slides, observation 3",
        r"cifar/obs3_[^/]*(/.*)?",
    ),
    PaperClaim(
        "flatness-runs",
        "the mechanism of observations 2–3 on the networks: final sharpness (λ_max, tr H, "
        "‖∇E‖²) falls with β at fixed η, by flow (2)'s first-order ratio",
        "slides; docs/theory.md (T64)–(T69)",
        r"sharpness_runs/(falls_with_beta|ratio_vs_flow2)/.*",
    ),
    PaperClaim(
        "explicit",
        "the explicit IGR-M baseline (GD on E + μ‖∇E‖²) stands in for GD+M",
        "paper §5; docs/theory.md (T42), (T63)",
        r"cifar/explicit[^/]*(/.*)?",
    ),
    PaperClaim(
        "explicit-tracks",
        "inside its range, explicit GD on E + μ*‖∇E‖² tracks GD+M more closely than plain GD (BN-free MLP, full batch)",
        "paper §5; docs/theory.md (T70)–(T75)",
        r"explicit_study/.*",
    ),
    PaperClaim(
        "noise-obs1",
        "noise Obs-1: momentum shrinks the gradient-noise covariance by (1−β)/(1+β)",
        "slides, Obs-1; docs/theory.md (T34)",
        r"noise/variance_ratio_slides(/.*)?",
    ),
    PaperClaim(
        "noise-obs1-exact",
        "the noise of (1−β)∇G_k equals its exact finite-k theory (iid and "
        "without-replacement mini-batches; Obs-1 made exact)",
        "docs/theory.md (T34)–(T36); docs/noise.md",
        r"noise/variance_ratio_theory(/.*)?",
    ),
    PaperClaim(
        "noise-bn-share",
        "the exact without-replacement theory's premise: a batch gradient is a mean of "
        "per-example gradients (additive share ρ = 1; BatchNorm in train mode breaks it)",
        "docs/theory.md (T76)–(T79)",
        r"noise/additive_share(/.*)?",
    ),
    PaperClaim(
        "noise-bn-corrected",
        "the without-replacement noise theory corrected by that additive share",
        "docs/theory.md (T77)",
        r"noise/variance_ratio_bn_corrected(/.*)?",
    ),
    PaperClaim(
        "noise-obs2",
        "noise Obs-2: the expected implicit regulariser of SGD+M is 1/(1−β) times SGD's",
        "slides, Obs-2",
        r"noise/reg_ratio_slides(/.*)?",
    ),
    PaperClaim(
        "noise-obs2-exact",
        "E[IGRM]/E[IGR] equals its exact finite-k expression (Obs-2 made exact)",
        "docs/theory.md (T37)",
        r"noise/reg_ratio_theory(/.*)?",
    ),
    PaperClaim(
        "interval-coverage",
        "check of the method: the noise intervals cover at the configured design",
        "docs/noise.md §7",
        r"noise/interval_coverage(/.*)?",
    ),
    PaperClaim(
        "eos-edge",
        "the rival explanation of momentum's flatness (Cohen et al. 2021): full-batch GD+M's λ_max "
        "rises to the stability limit 2(1+β)/h and hovers there",
        "Cohen et al. ICLR 2021; docs/mechanism.md (S1)–(S4)",
        r"eos/at_edge/.*",
    ),
    PaperClaim(
        "eos-flow2",
        "flow (2) applies to full-batch GD+M's final sharpness (its range ε at the end; at the edge ε ≥ 2)",
        "docs/mechanism.md (S3)",
        r"eos/flow2/.*",
    ),
    PaperClaim(
        "flatness-matched",
        "sharpness falls with β at equal train loss, and at the end where every run converged "
        "(full-batch MLP and trained networks)",
        "docs/mechanism.md (S5)–(S8)",
        r"(eos/(matched_loss|final)|sharpness_runs/matched_loss)/.*",
    ),
    PaperClaim(
        "modified-loss-h2",
        "beyond the paper: GD+M's O(h³) flow is the gradient flow of Ẽ₂ in the metric "
        "(I + h²H²/(6(1−β)²))⁻¹, and GD+M's limit point follows from it at O(h³)",
        "docs/modified_flows.md §7.2",
        r"modified_loss/.*",
    ),
)


def assign(ids: pd.Series, claims: tuple[PaperClaim, ...] = PAPER_CLAIMS) -> pd.Series:
    """The key of the one paper claim each row id belongs to; an id that matches none or
    several is an error naming it (add or narrow its entry in PAPER_CLAIMS)."""
    patterns = [(c.key, re.compile(c.ids)) for c in claims]
    keys = []
    for i in ids:
        hits = [k for k, p in patterns if p.fullmatch(str(i))]
        if len(hits) != 1:
            what = "no claim" if not hits else f"several claims ({', '.join(hits)})"
            raise ValueError(
                f"claim row {i!r} matches {what} of igrm.claims.summary.PAPER_CLAIMS; "
                "add (or narrow) the entry for its kind of row there"
            )
        keys.append(hits[0])
    return pd.Series(keys, index=ids.index, name="paper_claim")


def claim_verdict(counts: dict[str, int]) -> str:
    """One word for a claim from its rows' verdict counts: decided in-range rows only. A
    claim with rows that reproduce and rows that do not is *mixed*, and says how many rows
    were decided: each row is judged at its own level, with no correction over the claim's
    rows (no Holm, no Bonferroni across rows), so among many rows a few "does not reproduce"
    can be chance (README, "What your run found")."""
    rep, fail = counts.get(REPRODUCES, 0), counts.get(FAILS, 0)
    if rep and fail:
        return (
            f"{MIXED} ({rep} of {rep + fail} decided in-range rows reproduce, {fail} "
            f"{'does' if fail == 1 else 'do'} not; rows not corrected for multiplicity)"
        )
    if rep:
        return PARTLY if counts.get(INCONCLUSIVE, 0) else REPRODUCES
    if fail:
        return FAILS
    if counts.get(INCONCLUSIVE, 0):
        return INCONCLUSIVE
    return OUT_OF_RANGE


def _headline(rows: pd.DataFrame, verdict: str, prefer: str = "") -> pd.Series:
    """The row that speaks for the claim: the first in-range row with the claim's verdict
    (for 'mixed', the first that does not reproduce: the reader must see it), one with a
    measured number before one without, else the first row."""
    want = {MIXED: FAILS, PARTLY: REPRODUCES}.get(verdict.split(" (")[0], verdict)
    if prefer:  # only where it holds a row of the claim's verdict: a mixed claim still shows a failure
        preferred = rows[rows["id"].str.contains(prefer, regex=True)]
        rows = preferred if (preferred["verdict"] == want).any() else rows
    finite = pd.to_numeric(rows["measured"], errors="coerce").notna()
    for pick in (rows[(rows["verdict"] == want) & finite], rows[rows["verdict"] == want], rows[finite], rows):
        if len(pick):
            return pick.iloc[0]


def _number(v) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if x != x else f"{x:.4g}"


def headline_text(row: pd.Series) -> str:
    """'measured ± uncertainty (expected …)', the uncertainty as the row states it."""
    u = _number(row["uncertainty"])
    u = {"inf": "∞ (unbounded interval)"}.get(u, u)
    measured = _number(row["measured"]) + ("" if u == "–" else f" ± {u}")
    return f"{measured} (expected {row['expected']})"


def summarise(table: pd.DataFrame, claims: tuple[PaperClaim, ...] = PAPER_CLAIMS) -> pd.DataFrame:
    """One line per paper claim that has rows in ``table`` (claims without rows in this run,
    e.g. a config without the noise stage, are left out), in the order of PAPER_CLAIMS."""
    keyed = table.assign(paper_claim=assign(table["id"], claims))
    lines = []
    for c in claims:
        rows = keyed[keyed["paper_claim"] == c.key]
        if not len(rows):
            continue
        counts = {v: int((rows["verdict"] == v).sum()) for v in VERDICTS}
        verdict = claim_verdict(counts)
        head = _headline(rows, verdict, c.headline)
        lines.append(
            {
                "claim": c.claim,
                "source": c.source,
                "verdict": verdict,
                **counts,
                "headline": headline_text(head),
                "headline_id": head["id"],
                "rows": f"claims.md#{c.key}",
            }
        )
    return pd.DataFrame(lines, columns=SUMMARY_COLUMNS)


def detail_markdown(table: pd.DataFrame, claims: tuple[PaperClaim, ...] = PAPER_CLAIMS) -> str:
    """claims.md: the rows grouped by paper claim, one section (anchor = the claim's key,
    the summary's link target) and one table each, in the order of PAPER_CLAIMS."""
    from ..pipeline.io import markdown_table

    keyed = table.assign(paper_claim=assign(table["id"], claims))
    parts = [
        "# Claims, row by row",
        "",
        "One section per claim of the paper; the one-line summary is claims_summary.md.",
        "",
    ]
    for c in claims:
        rows = keyed[keyed["paper_claim"] == c.key].drop(columns="paper_claim")
        if not len(rows):
            continue
        counts = ", ".join(f"{int((rows['verdict'] == v).sum())} {v}" for v in VERDICTS)
        parts += [
            f'<a id="{c.key}"></a>',
            "",
            f"## {c.claim}",
            "",
            f"Source: {c.source}. Rows: {counts}.",
            "",
            markdown_table(rows),
            "",
        ]
    return "\n".join(parts)


def summary_markdown(summary: pd.DataFrame) -> str:
    """claims_summary.md: the one-line-per-claim table, each line linking to its section."""
    from ..pipeline.io import markdown_table

    shown = summary.assign(claim=[f"[{c}]({r})" for c, r in zip(summary["claim"], summary["rows"])])
    return markdown_table(shown.drop(columns=["rows", "headline_id"]))
