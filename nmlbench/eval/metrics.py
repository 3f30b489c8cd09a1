"""Pure metric functions on label/prediction arrays (no torch), shared with the leaderboard."""

from __future__ import annotations

import numpy as np


def top1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.shape != preds.shape or labels.size == 0:
        raise ValueError(
            f"need equal, non-empty label and prediction arrays, got {labels.shape} and {preds.shape}"
        )
    return float((labels == preds).mean() * 100.0)


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Macro-averaged F1 in percent over the classes present in labels or predictions (sklearn's rule)."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.shape != preds.shape or labels.size == 0:
        raise ValueError(
            f"need equal, non-empty label and prediction arrays, got {labels.shape} and {preds.shape}"
        )
    classes = np.union1d(labels, preds)
    tp = np.array([np.sum((labels == c) & (preds == c)) for c in classes], dtype=np.float64)
    fp = np.array([np.sum((labels != c) & (preds == c)) for c in classes], dtype=np.float64)
    fn = np.array([np.sum((labels == c) & (preds != c)) for c in classes], dtype=np.float64)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean() * 100.0)


def compute_metrics(labels: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    return {"top1": top1(labels, preds), "macro_f1": macro_f1(labels, preds)}


def prediction_flags(labels: np.ndarray, preds: np.ndarray) -> list[str]:
    """Observations on a split's predictions, for a record's `flags` (sorted identifiers).

    'degenerate': one class predicted for every sample of a split whose labels hold more than one
    class (a head that collapsed, seen on real OOD data across noise rates). Such tables can
    coincide across checkpoints without any copying, so the leaderboard shows the flag instead of
    treating them as copies. A split with a single label class is never flagged: predicting that
    class is right, not degenerate.
    'perfect': every prediction right. Such a table is the ground truth itself, so two checkpoints
    that both reach it share it honestly; it says the task cannot tell them apart.
    """
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.shape != preds.shape or labels.size == 0:
        raise ValueError(
            f"need equal, non-empty label and prediction arrays, got {labels.shape} and {preds.shape}"
        )
    flags = []
    if np.unique(preds).size == 1 and np.unique(labels).size > 1:
        flags.append("degenerate")
    if np.array_equal(preds, labels):
        flags.append("perfect")  # at the task's ceiling: any two good heads agree here
    return flags
