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
        "any-order",
        "beyond the paper: GD+M follows its order-R modified flow (R = 1…5) to order R and loses "
        "an order without the flow's new terms; GD on the order-R modified loss and the limit "
        "sharpness of the order-R flow err at the order the theory gives",
        "docs/modified_flows.md §8 (M18)–(M24)",
        r"order/any_order/.*",
    ),
    PaperClaim(
        "any-order-metric",
        "beyond the paper, our finding (not a published claim): the order-R modified flow is a gradient "
        "flow −P∇Ẽ in a metric P that is a power series in hH (H the Hessian of E); in the Euclidean metric, "
        "its h^n term f_n is a gradient",
        "docs/modified_flows.md §8.4 (M22)",
        r"order/any_order_metric/.*",
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


#: the rows that decide a claim (re.search on the row id), where not all of its in-range rows
#: do: never a row where the claim predicts something else. Flow (2) from rest (``naive``) is
#: O(h) by the rest offset (docs/modified_flows.md), so its order-1 rows are controls, not
#: evidence for the second order; SGD+M's ``noreg`` and flow (1)/(2) rows are ablations.
DECIDING: dict[str, str] = {
    "gdm-flow2": r"/(?!naive/)[^/]+/flow2$",
    "sgdm-flow": r"/sgdm_flow$",
    "flow3-order": r"/flow3$",
    "limit-point": r"^toy/limit_matches_flow2/[^/]+$",
}

#: what a row measures, in words with its unit, by row id (re.search, first match); slope and
#: paired-difference rows state their unit in their detail, which wins (:func:`quantity`)
QUANTITIES: tuple[tuple[str, str], ...] = (
    (r"^order/any_order/.*/limit_range/", "ε = hL0/(1−β)² of the range-of-validity finding (M27)"),
    (r"^order/higher/.*/limit/|^order/any_order/.*/limit_slow/", "fitted order p of the limit-sharpness error (∝ hᵖ)"),
    (r"^order/any_order_metric/.*/metric/", "1 if the conditions (M22) through h^(R−1) have an exact solution, else 0"),
    (r"^order/any_order_metric/.*/euclidean/", "number of nonzero coefficients of curl f_n (0: a gradient)"),
    (r"^order/|^toy/(igr_order_beta0|limit_convergence)", "fitted order p of the error (∝ hᵖ)"),
    (r"^toy/flatter_minima", "Spearman ρ between β and the limit sharpness"),
    (r"^toy/limit_matches_flow2", "relative error |S_GD+M / S_flow(2) − 1| of the limit sharpness"),
    (r"^toy/flow2_closer_than_flow1", "error ratio |err flow (2)| / |err flow (1)|"),
    (r"^cifar/obs1", "fitted change of test accuracy across the h grid (mean of per-seed OLS fits; 0.01 = 1 pp)"),
    (r"^cifar/obs2", "fitted −log(spread ratio) across the β grid (mean of per-seed OLS fits of −log detrended SD)"),
    (r"^cifar/obs3", "fitted change of test accuracy across the β grid (mean of per-seed OLS fits; 0.01 = 1 pp)"),
    (r"^cifar/explicit", "difference of mean final test accuracy, explicit − plain (accuracy)"),
    (r"^sharpness_runs/falls_with_beta", "OLS slope, (−final sharpness) per unit β"),
    (r"^sharpness_runs/ratio", "ratio of sharpness drops − flow (2)'s ratio"),
    (r"^explicit_study", "mean paired difference over seeds"),
    (r"^eos/at_edge", "r = λ_max·h/(2(1+β)), mean over seeds of the final window (1 at the edge)"),
    (r"^eos/flow2", "largest final ε = hλ_max/(1−β)² over seeds"),
    (r"^modified_loss/metric_identity", "largest relative residual of the metric identity"),
    (r"^noise/additive_share", "additive share ρ − 1"),
    (r"^noise/interval_coverage", "coverage (fraction of simulated intervals that cover)"),
    (r"^noise/", "ratio − 1 (δ)"),
)

_STATED_UNIT = re.compile(r"(OLS slope|mean paired difference) [-+0-9.e]+ (.+?) over [Nn]=")
_LEVEL = re.compile(r"(\d+(?:\.\d+)?) ?% (?:t-)?interval|level (0\.\d+)")


def quantity(row: pd.Series) -> str:
    """What ``row`` measures, in words with its unit (the row's own statement first)."""
    m = _STATED_UNIT.search(str(row.get("detail", "")))
    if m:
        return f"{m.group(1)}, {m.group(2)}"
    return next((q for pat, q in QUANTITIES if re.search(pat, str(row["id"]))), "measured value")


def interval_level(row: pd.Series) -> str:
    """The level of the interval whose half-width the row's ``uncertainty`` is, as its detail
    states it ('95 %'); for the noise rows the config's noise.ci_level."""
    m = _LEVEL.search(str(row.get("detail", "")))
    if m:
        pct = float(m.group(1)) if m.group(1) else 100 * float(m.group(2))
        return f"{pct:g} %"
    if str(row["id"]).startswith("noise/interval_coverage"):
        return "95 % normal-approximation"
    return "noise.ci_level" if str(row["id"]).startswith("noise/") else "stated in its row"


def deciding(rows: pd.DataFrame, key: str) -> pd.DataFrame:
    """The rows that decide claim ``key``: in range (out-of-range rows are findings, never
    evidence, docs/theory.md (T45)) and, where :data:`DECIDING` names them, only those."""
    inr = rows[(rows["verdict"] != OUT_OF_RANGE) & ~rows["id"].str.endswith("/out_of_range")]
    pat = DECIDING.get(key)
    return inr[inr["id"].str.contains(pat, regex=True)] if pat else inr


def _headline(rows: pd.DataFrame, verdict: str, prefer: str = "", key: str = "") -> pd.Series:
    """The row that speaks for the claim: one of its deciding rows (:func:`deciding`) with the
    claim's verdict (for 'mixed', one that does not reproduce: the reader must see it), else
    the deciding row nearest that verdict; one with a measured number before one without.
    Only a claim without in-range deciding rows is headed by another (an out-of-range) row."""
    want = {MIXED: FAILS, PARTLY: REPRODUCES}.get(verdict.split(" (")[0], verdict)
    pool = deciding(rows, key)
    pool = pool if len(pool) else rows
    if prefer:  # only where it holds a row of the claim's verdict: a mixed claim still shows a failure
        preferred = pool[pool["id"].str.contains(prefer, regex=True)]
        pool = preferred if (preferred["verdict"] == want).any() else pool
    finite = pd.to_numeric(pool["measured"], errors="coerce").notna()
    for v in dict.fromkeys([want, FAILS, INCONCLUSIVE, REPRODUCES, OUT_OF_RANGE]):
        for pick in (pool[(pool["verdict"] == v) & finite], pool[pool["verdict"] == v]):
            if len(pick):
                return pick.iloc[0]
    return pool.iloc[0]


def _number(v) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "–" if x != x else f"{x:.4g}"


def _cell(row_id: str) -> str:
    parts = str(row_id).split("/", 2)
    return parts[2] if len(parts) == 3 else ""


def headline_text(row: pd.Series) -> str:
    """'quantity [cell]: measured ± half-width (level interval); expected …; judged: margin'.
    The uncertainty as the row states it; the margin (tolerance) fixed before the run."""
    u = _number(row["uncertainty"])
    cell = _cell(row["id"])
    where = f" [{cell}]" if cell else ""
    if u == "inf":
        spread = " ± ∞ (unbounded interval)"
    elif u == "–":
        spread = " (no interval)"
    else:
        spread = f" ± {u} ({interval_level(row)} interval, half-width)"
    judged = str(row.get("tolerance", "") or "").strip()
    judged = judged.split(";")[0] if len(judged) > 60 else judged  # the decision rule's first clause
    # 'A: reproduces' reads as the verdict; it is the rule: 'reproduces if A'
    judged = re.sub(r"^(.+): (reproduces|does not reproduce|does not)$", r"\2 if \1", judged)
    out_of_range = " — out of range, not judged" if row["verdict"] == OUT_OF_RANGE else ""
    return (
        f"{quantity(row)}{where}: {_number(row['measured'])}{spread}; expected {row['expected']}"
        + (f"; judged: {judged}" if judged and judged != "nan" else "")
        + out_of_range
    )


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
        head = _headline(rows, verdict, c.headline, c.key)
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
    return markdown_table(shown.drop(columns=["rows", "headline_id"])) + "\n\n" + glossary_markdown(summary) + "\n"


# ---------------------------------------------------------------- glossary
#: every symbol and word of art a summary line can show: (term, pattern (re.search on the
#: summary's text; the term itself where empty), definition). :func:`glossary` keeps the
#: ones a summary uses, each once.
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    ("h", r"(?<![\w^])h(?![\w(])", "step size (learning rate) of GD+M / SGD+M"),
    ("β", "", "heavy-ball momentum coefficient"),
    ("η", "", "effective learning rate h/(1−β), the step of the gradient flow GD+M follows"),
    ("E", r"(?<![\w])E(?![\w\[])", "the training loss (full batch; of one mini-batch for SGD)"),
    ("‖∇E‖²", "", "squared norm of the loss gradient, the implicit regulariser's term"),
    (
        "flow (1), flow (2)",
        r"flow \([12]\)",
        "the modified flows of the paper's Thm 3.1: (1) ẋ = −∇E at rate η; "
        "(2) adds the (1+β)/(1−β)-strengthened IGR term (docs/theory.md (T5), (T6))",
    ),
    (
        "IGR, IGR-M, IGRM",
        r"IGR",
        "implicit gradient regularisation: the ‖∇E‖² penalty a discrete step adds "
        "implicitly (Barrett & Dherin 2021); IGR-M / IGRM its momentum version",
    ),
    ("G_k", "", "the historical loss of SGD+M at step k, whose piecewise flow SGD+M follows (docs/theory.md (T19))"),
    ("k", r"(?<![\w_])k(?![\w])", "number of steps (mini-batches) a historical gradient spans"),
    ("λ_max", "", "largest eigenvalue of the loss Hessian H (sharpness)"),
    ("tr H", "", "trace of the loss Hessian"),
    ("S", r"(?<![\w])S(?:_|\b)", "limit sharpness (λ_max at the point a method converges to)"),
    (
        "ε",
        "",
        "the expansion's small parameter ε = h·L/(1−β)² (L = λ_max, or L0 = spectral radius of the "
        "Hessian at the start); theories are judged only where ε ≤ min(1, 1/(1+√β)²) (docs/theory.md (T45))",
    ),
    ("L0", "", "spectral radius of the Hessian at the starting point (the curvature scale of ε)"),
    ("μ, μ*", "μ", "weight of the explicit penalty μ‖∇E‖²; μ* the weight that matches GD+M (docs/theory.md (T42))"),
    ("p", r"(?<![\w])p(?![\w])", "fitted error order: slope of log(error) against log(h)"),
    (
        "ρ",
        "",
        "Spearman's rank correlation (toy rows); in noise rows, the additive (per-example) share of the "
        "batch-gradient variance",
    ),
    ("δ", "", "measured ratio / its theory − 1 (0 when the theory holds)"),
    ("±", "", "half-width of the interval whose level the line states"),
    ("OLS slope", "", "least-squares slope over the (level, seed) points, with its t-interval"),
    ("equivalence", "", "a margin declared before the run; reproduces when the whole interval lies inside it"),
    ("MDE", "", "minimum detectable effect at the row's n (power 0.8)"),
    ("Fieller", "", "Fieller's interval for a ratio of two means"),
    ("WOR", "", "sampling without replacement (epoch sampler)"),
    ("(Tnn), (Mnn)", r"\((?:T|M)\d+\)", "equation nn of docs/theory.md (T) or docs/modified_flows.md (M)"),
    (REPRODUCES, "", "the interval (or value) lies where the claim says, at the declared margin"),
    (FAILS, "", "the interval lies outside the claim's margin or on the wrong side"),
    (INCONCLUSIVE, "", "too little data to decide (the row says the n that would)"),
    (OUT_OF_RANGE, "", "outside the range where the theory applies: a finding, never evidence for or against"),
    (MIXED, "", "some in-range rows reproduce and some do not"),
    (PARTLY, "", "none fails, some are inconclusive (the rows are not tested jointly)"),
)


def glossary(text: str) -> list[tuple[str, str]]:
    """(term, definition) for each glossary term ``text`` uses, in :data:`GLOSSARY`'s order."""
    return [(t, d) for t, pat, d in GLOSSARY if re.search(pat or re.escape(t), text)]


def summary_text(summary: pd.DataFrame) -> str:
    """All the words a reader of the summary sees (what the glossary must cover)."""
    cols = [c for c in ("claim", "source", "verdict", "headline") if c in summary]
    return "\n".join([" ".join(VERDICTS), *(" ".join(map(str, summary[c])) for c in cols)])


def glossary_markdown(summary: pd.DataFrame) -> str:
    terms = glossary(summary_text(summary))
    return "\n".join(["**Glossary**", "", *(f"- **{t}**: {d}" for t, d in terms)])
