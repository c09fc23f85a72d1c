"""The claims table: every claim of the paper as theory vs measured, with a verdict.

Each analysis contributes rows (results/claims/<part>.csv); the ``claims`` rule
concatenates them into results/tables/claims.{csv,md,tex}. A row says what was
expected, what was measured (with its uncertainty where there is one), the
tolerance used, and the verdict. The tolerance is fixed in the config before the
measurement and never tuned to make a row pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

# the verdict names belong to the statistics that decide them
from ..stats import FAILS, INCONCLUSIVE, OUT_OF_RANGE, REPRODUCES, VERDICTS

COLUMNS = ["id", "claim", "source", "expected", "measured", "uncertainty", "tolerance", "verdict", "detail"]


def row(
    id: str,
    claim: str,
    source: str,
    expected: float | str,
    measured: float,
    tolerance: float | str,
    verdict: str,
    uncertainty: float = math.nan,
    detail: str = "",
) -> dict:
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(map(repr, VERDICTS))}; got {verdict!r}")
    return {
        "id": id,
        "claim": claim,
        "source": source,
        "expected": expected,
        "measured": measured,
        "uncertainty": uncertainty,
        "tolerance": tolerance,
        "verdict": verdict,
        "detail": detail,
    }


def within(measured: float, expected: float, tol: float) -> str:
    """Verdict for |measured − expected| ≤ tol (NaN measured: inconclusive)."""
    if measured is None or not math.isfinite(measured):
        return INCONCLUSIVE
    return REPRODUCES if abs(measured - expected) <= tol else FAILS


def frame(rows: Iterable[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=COLUMNS)
    return df


def combine(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    df = pd.concat(frames, ignore_index=True)[COLUMNS]
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise ValueError(f"duplicate claim ids: {sorted(set(dup))}")
    return df
