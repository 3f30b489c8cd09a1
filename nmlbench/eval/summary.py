"""The table `nmlbench evaluate` prints: top-1 per model x method, ID/OOD averages and per task.

Dense tasks (detection, instance segmentation) get their own tables of COCO box AP and mask AP:
AP and top-1 are never averaged together.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def _table(records: list[dict[str, Any]], metric: str) -> str:
    """Mean `metric` over seeds; columns: ID avg, OOD avg, then each task."""
    rows = [
        {
            "model": r["model"]["name"],
            "method": r["method"]["name"],
            "task": r["task"]["name"],
            "domain": r["task"]["domain"],
            "seed": r["seed"],
            metric: r["metrics"][metric],
        }
        for r in records
    ]
    df = pd.DataFrame(rows)
    per_task = df.pivot_table(index=["model", "method"], columns="task", values=metric, aggfunc="mean")
    avgs = df.groupby(["model", "method", "domain"])[metric].mean().unstack("domain")
    avgs = avgs.rename(columns={"id": "ID avg", "ood": "OOD avg"})
    return pd.concat([avgs, per_task], axis=1).round(2).to_string()


def summary_table(records: list[dict[str, Any]]) -> str:
    """Top-1 of classification records, then box AP (and mask AP) of dense ones."""
    if not records:
        return "no results"
    parts = []
    for metric, title in (("top1", ""), ("box_ap", "COCO box AP"), ("mask_ap", "COCO mask AP")):
        chosen = [r for r in records if metric in r["metrics"]]
        if chosen:
            parts.append((f"{title}\n" if title else "") + _table(chosen, metric))
    return "\n\n".join(parts)
