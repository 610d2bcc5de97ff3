"""The answer at a glance: the one table the book's index opens with, every judged claim of the paper and every
field answer on a row, generated from the same numbers as the claims and field pages (never typed)."""

from __future__ import annotations

import pandas as pd

from ..judgement.claims import DATASET_NAMES, JUDGED

COLUMNS = ["", "question", "paper", "measured (points)", "seeds", "answer"]


def verdict_table(verdicts: pd.DataFrame, answers: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per judged claim of the paper (:func:`asgt_lib.judgement.claims.evaluate`: claim, the paper's
    value, the measured value with its interval, seeds, verdict) and per field answer
    (:func:`asgt_lib.judgement.field.answer_rows`, per dataset: question, difference with its interval, seeds,
    answer). Claims that could not be judged (absolute accuracies off the paper's protocol) are left to the claims
    page."""
    rows = []
    for r in verdicts[verdicts.verdict.isin(JUDGED)].itertuples():
        rows.append({"": f"claim ({r.where})", "question": r.claim, "paper": r.paper,
                     "measured (points)": r.measured.removesuffix(" points"), "seeds": int(r.seeds),
                     "answer": r.verdict.upper()})
    for dataset, a in answers.items():
        for r in a[a.answer != "NOT COMPUTED"].itertuples():
            measured = r.difference if r.interval in ("–", "") else f"{r.difference} {_bracket(r.interval)}"
            rows.append({"": f"field ({DATASET_NAMES.get(dataset, dataset)})", "question": r.question, "paper": "–",
                         "measured (points)": measured, "seeds": int(r.seeds), "answer": r.answer})
    return pd.DataFrame(rows, columns=COLUMNS).set_index("")


def _bracket(interval: str) -> str:
    return f"({interval})" if interval.startswith(("range", "Fisher")) else interval
