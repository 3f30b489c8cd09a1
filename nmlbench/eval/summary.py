"""The table `nmlbench evaluate` prints: top-1 per model x method, ID/OOD averages and per task."""

from __future__ import annotations

from typing import Any

import pandas as pd


def summary_table(records: list[dict[str, Any]]) -> str:
    """Mean top-1 over seeds; columns: ID avg, OOD avg, then each task."""
    if not records:
        return "no results"
    rows = [
        {
            "model": r["model"]["name"],
            "method": r["method"]["name"],
            "task": r["task"]["name"],
            "domain": r["task"]["domain"],
            "seed": r["seed"],
            "top1": r["metrics"]["top1"],
        }
        for r in records
    ]
    df = pd.DataFrame(rows)
    per_task = df.pivot_table(index=["model", "method"], columns="task", values="top1", aggfunc="mean")
    avgs = df.groupby(["model", "method", "domain"])["top1"].mean().unstack("domain")
    avgs = avgs.rename(columns={"id": "ID avg", "ood": "OOD avg"})
    table = pd.concat([avgs, per_task], axis=1).round(2)
    return table.to_string()
