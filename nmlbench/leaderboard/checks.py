"""Every check a staged submission must pass; each failure becomes one line in the rejection.

Only JSON (`json.loads`) and parquet (`pyarrow`) are ever parsed: nothing from a submission is
unpickled, imported or executed. Metrics are recomputed from the predictions and the task's own
test labels with `nmlbench.eval.metrics`, so a record can only claim what its predictions show.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nmlbench.eval.metrics import macro_f1, prediction_flags, top1  # the very functions `evaluate` used
from nmlbench.io import sha256_file
from nmlbench.leaderboard.board import PRIVATE_HINT, BoardConfig, BoardIndex, is_user_task, task_ref
from nmlbench.leaderboard.catalog import TaskCatalog
from nmlbench.leaderboard.content import PredictionsError, content_hash, decode_predictions
from nmlbench.leaderboard.dense import check_dense_predictions
from nmlbench.leaderboard.records import CorruptFile, read_json
from nmlbench.leaderboard.schema import schema_errors

METRIC_TOLERANCE = 0.01  # percentage points: records may round to two decimals
DENSE_TYPES = ("detection", "instance_segmentation")


@dataclass
class Findings:
    """What the checks learnt: the reasons to reject, and the parsed content when valid."""

    reasons: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> record
    # file name -> (content hash, flags, number of wrong predictions)
    content: dict[str, tuple[str, list[str], int]] = field(default_factory=dict)


def read_json_strict(path: Path, rel: str, reasons: list[str]) -> Any | None:
    """UTF-8, standard JSON only (no NaN/Infinity/1e400, no duplicate keys); None and a reason otherwise."""
    try:
        return read_json(path, rel)
    except CorruptFile as e:
        reasons.append(str(e))
        return None


def _layout(root: Path, reasons: list[str]) -> tuple[list[Path], set[str]]:
    """Records at the top, predictions under predictions/: anything else is refused."""
    records, preds = [], set()
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        rel = p.relative_to(root).as_posix()
        if rel == "submission.json":
            continue
        if "/" not in rel and rel.endswith(".json"):
            records.append(p)
        elif rel.startswith("predictions/") and rel.count("/") == 1 and rel.endswith((".parquet", ".json")):
            preds.add(rel)
        elif rel.startswith("configs/") and rel.count("/") == 1 and rel.endswith(".yaml"):
            _check_config(p, rel, reasons)  # the resolved tuner configs `nmlbench evaluate` writes
        else:
            reasons.append(
                f"{rel}: unexpected file; a submission holds submission.json, <run_id>.json "
                "records, predictions/<run_id>.parquet (dense tasks: .json) and configs/<key>.yaml only"
            )
    if not records:
        reasons.append("no result records (*.json beside submission.json); copy them from results/<suite>/")
    return records, preds


def _check_config(path: Path, rel: str, reasons: list[str]) -> None:
    """A config is kept as provenance; it must be plain YAML data (safe_load never builds objects)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
    # ValueError/OverflowError: an impossible date (2026-13-45); RecursionError: deep nesting
    except (UnicodeDecodeError, yaml.YAMLError, ValueError, OverflowError, RecursionError) as e:
        reasons.append(f"{rel}: not a readable UTF-8 YAML config ({type(e).__name__}); remove or fix it")
        return
    if not isinstance(data, dict):
        reasons.append(f"{rel}: a config must be a YAML mapping")


def _read_predictions(
    path: Path, rel: str, reasons: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, path.stat().st_size - 4))
        tail = f.read(4)
    if head != b"PAR1" or tail != b"PAR1":
        reasons.append(f"{rel}: not a parquet file")
        return None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        reasons.append(f"{rel}: unreadable parquet ({str(e)[:120]})")
        return None
    try:
        return decode_predictions(table)
    except PredictionsError as e:
        reasons.append(f"{rel}: {e}; write sample_id: string, label: int64, pred: int64 (as evaluate does)")
        return None


def _check_task(
    rec: dict[str, Any], rel: str, catalog: TaskCatalog, board: BoardConfig, reasons: list[str]
) -> bool:
    t = rec["task"]
    if is_user_task(t):
        if not board.user_tasks:
            reasons.append(
                f"{rel}: task {t['name']!r} is a user task ({t.get('origin') or 'no origin'}); this board "
                f"takes registered tasks only; {PRIVATE_HINT}"
            )
            return False
        if not t.get("origin") or not t.get("key"):
            reasons.append(
                f"{rel}: user task {t['name']!r} needs task.origin (its YAML path) and task.key "
                "(its definition hash); re-evaluate with this nmlbench"
            )
            return False
    info = catalog.task(task_ref(t))
    if info is None:
        if is_user_task(t):
            reasons.append(
                f"{rel}: cannot read task {t['name']!r} from {t['origin']}; the task YAML (and its data) "
                "must be readable where `nmlbench leaderboard submit` runs"
            )
        else:
            reasons.append(f"{rel}: unknown task {t['name']!r}; it must be a task nmlbench defines")
        return False
    if t["version"] != info.version:
        reasons.append(
            f"{rel}: task {t['name']!r} version {t['version']} does not exist here "
            f"(current: {info.version}); re-evaluate with this nmlbench"
        )
        return False
    if t.get("type", "classification") != info.type:
        reasons.append(f"{rel}: task.type is {t.get('type', 'classification')!r} but {task_ref(t)!r} "
                       f"is {info.type!r}")
        return False
    for key in ("name", "num_classes", "domain", "train_task"):
        if t[key] != getattr(info, key):
            reasons.append(f"{rel}: task.{key} is {t[key]!r} but {task_ref(t)!r} has {getattr(info, key)!r}")
            return False
    return True


def _check_predictions(
    rec: dict[str, Any],
    rel: str,
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    catalog: TaskCatalog,
    findings: Findings,
) -> None:
    reasons = findings.reasons
    ids, labels, preds = table
    if len(ids) != rec["predictions"]["n"]:
        reasons.append(f"{rel}: predictions.n is {rec['predictions']['n']} but the file has {len(ids)} rows")
    true_ids, true_labels = catalog.truth(task_ref(rec["task"]))
    if len(ids) != len(true_ids) or not np.array_equal(ids, true_ids):
        reasons.append(
            f"{rel}: sample ids differ from the test split of {rec['task']['name']!r} "
            f"({len(ids)} rows vs {len(true_ids)}); predict every test sample, in split order"
        )
        return
    if not np.array_equal(labels, true_labels):
        reasons.append(
            f"{rel}: the label column differs from the task's ground truth in "
            f"{int((labels != true_labels).sum())} rows"
        )
        return
    k = rec["task"]["num_classes"]
    if preds.min() < 0 or preds.max() >= k:
        reasons.append(f"{rel}: predictions outside the class range [0, {k - 1}]")
        return
    for name, fn in (("top1", top1), ("macro_f1", macro_f1)):
        value = fn(true_labels, preds)
        if abs(value - rec["metrics"][name]) > METRIC_TOLERANCE:
            reasons.append(
                f"{rel}: metrics.{name} claims {rec['metrics'][name]} but the predictions give {value:.4f}"
            )
    flags = prediction_flags(true_labels, preds)
    if "flags" in rec and sorted(rec["flags"]) != flags:  # records without `flags` predate them
        reasons.append(f"{rel}: flags claims {sorted(rec['flags'])} but the predictions give {flags}")
    errors = int((preds != true_labels).sum())
    findings.content[rel] = (content_hash(rec["task"]["name"], ids, preds), flags, errors)


def _check_provenance(rec: dict[str, Any], rel: str, reasons: list[str]) -> None:
    m = rec["model"]
    if not m["checkpoint_sha256"]:
        reasons.append(
            f"{rel}: model.checkpoint_sha256 is missing; evaluate a checkpoint whose weights hash is known"
        )
    noisy = m["noise"] is not None and m["noise"].get("kind") != "none"  # a clean run has no manifest
    if noisy and not m["manifest_sha256"]:
        reasons.append(f"{rel}: model.manifest_sha256 is missing for a model pretrained on noisy data")


def check_record(
    root: Path,
    path: Path,
    pred_files: set[str],
    catalog: TaskCatalog,
    findings: Findings,
    board: BoardConfig | None = None,
) -> None:
    """Schema, file links, hashes, task, provenance and recomputed metrics of one record."""
    rel, reasons = path.name, findings.reasons
    rec = read_json_strict(path, rel, reasons)
    if rec is None:
        return
    errors = schema_errors(rec, "result")
    if errors:
        reasons.extend(f"{rel}: schema: {e}" for e in errors)
        return
    if path.stem != rec["run_id"]:
        reasons.append(f"{rel}: the file must be named after its run_id ({rec['run_id']}.json)")
    ppath = rec["predictions"]["path"]
    if ppath not in pred_files:
        reasons.append(f"{rel}: its predictions file {ppath} is missing")
        return
    if sha256_file(root / ppath) != rec["predictions"]["sha256"]:
        reasons.append(f"{rel}: predictions.sha256 does not match {ppath} (file changed after evaluation?)")
        return
    _check_provenance(rec, rel, reasons)
    if _check_task(rec, rel, catalog, board or BoardConfig(), reasons):
        if rec["task"].get("type") in DENSE_TYPES:  # a COCO results list, re-scored with COCOeval
            check_dense_predictions(rec, rel, root / ppath, catalog, findings, METRIC_TOLERANCE)
        else:
            table = _read_predictions(root / ppath, ppath, reasons)
            if table is not None:
                _check_predictions(rec, rel, table, catalog, findings)
    findings.records[rel] = rec


def checkpoint_identity(rec: dict[str, Any]) -> str:
    """The checkpoint a record was evaluated on: its model key, else its weights hash, else its name."""
    m = rec["model"]
    return str(m.get("key") or m.get("checkpoint_sha256") or m["name"])


def check_duplicates(findings: Findings, seen: dict[str, str], min_errors: int = 10) -> None:
    """Copies by content: the same decoded predictions under two checkpoints, or already on the board.

    `seen` maps content hashes of accepted submissions to their folder. Not copies: one table
    under several tuning seeds or methods of one checkpoint (a deterministic method, or two heads
    that agree), and degenerate tables (one class for a whole split, which any collapsed head on
    any checkpoint produces), and tables with fewer than `min_errors` wrong predictions (on a small
    or easy split honest checkpoints agree: all right, or the same hard sample wrong).
    """
    first: dict[str, tuple[str, str]] = {}  # content hash -> (checkpoint, record file)
    for rel in sorted(findings.content):
        digest, flags, errors = findings.content[rel]
        if "degenerate" in flags or errors < min_errors:  # agreement any two honest heads can reach
            continue
        ckpt = checkpoint_identity(findings.records[rel])
        if digest in seen:
            findings.reasons.append(
                f"{rel}: its predictions were already submitted (in {seen[digest]}): the same sample "
                "id -> prediction table"
            )
        elif digest in first and first[digest][0] != ckpt:
            findings.reasons.append(
                f"{rel}: its predictions are identical to those of {first[digest][1]}, which was "
                "evaluated on another checkpoint; submit each checkpoint's own predictions"
            )
        first.setdefault(digest, (ckpt, rel))


def check_task_keys(findings: Findings, index: BoardIndex) -> None:
    """One user-task name, one definition: records here and on the board agree on `task.key`.

    Registered tasks are pinned by name and version already (and their key may depend on where
    nmlbench is installed), so only user tasks are compared.
    """
    pinned = {name: key for name, (key, _) in index.task_keys.items()}
    where = {name: f"on the board ({folder})" for name, (_, folder) in index.task_keys.items()}
    for rel, rec in sorted(findings.records.items()):
        name, key = rec["task"]["name"], rec["task"].get("key")
        if not key or not is_user_task(rec["task"]):
            continue
        if name not in pinned:
            pinned[name], where[name] = key, f"in {rel}"
        elif pinned[name] != key:
            findings.reasons.append(
                f"{rel}: task {name!r} has definition hash {key[:12]}… but {where[name]} it is "
                f"{pinned[name][:12]}…: two different tasks share the name; rename one of them"
            )


def check_completeness(findings: Findings, catalog: TaskCatalog, board: BoardConfig | None = None) -> None:
    """Every (suite, model, method, seed) must cover every task of its suite.

    A registered suite names its tasks. A user suite (private boards only) is not known here, so
    its task list is every task its records name, and each group must cover all of them.
    """
    board = board or BoardConfig()
    groups: dict[tuple[str, str, str, int], set[str]] = defaultdict(set)
    user_suites: dict[str, set[str]] = defaultdict(set)
    for rec in findings.records.values():
        groups[(rec["suite"], rec["model"]["name"], rec["method"]["name"], rec["seed"])].add(
            rec["task"]["name"]
        )
        if board.user_tasks and is_user_task(rec["task"]):
            user_suites[rec["suite"]].add(rec["task"]["name"])
    for rec in findings.records.values():  # a user suite may also list registered tasks
        if rec["suite"] in user_suites:
            user_suites[rec["suite"]].add(rec["task"]["name"])

    def required(suite: str) -> list[str] | None:
        return sorted(user_suites[suite]) if suite in user_suites else catalog.suite_tasks(suite)

    for suite in sorted({key[0] for key in groups}):
        if required(suite) is None:
            hint = "" if board.user_tasks else f" (for a suite of your own, {PRIVATE_HINT})"
            findings.reasons.append(f"suite {suite!r} is unknown; records must name an nmlbench suite{hint}")
    for (suite, model, method, seed), tasks in sorted(groups.items()):
        need = required(suite)
        if need is None:
            continue
        missing = sorted(set(need) - tasks)
        extra = sorted(tasks - set(need))
        if missing:
            findings.reasons.append(
                f"{model} / {method} / seed {seed}: missing task(s) {', '.join(missing)} of suite {suite!r}"
            )
        if extra:
            findings.reasons.append(
                f"{model} / {method} / seed {seed}: task(s) {', '.join(extra)} are not in suite {suite!r}"
            )


def check_submission(
    root: Path, catalog: TaskCatalog, index: BoardIndex | None = None, board: BoardConfig | None = None
) -> Findings:
    """Run every check on the staged submission at `root` against the board's `index` and rules."""
    index, board = index or BoardIndex(), board or BoardConfig()
    findings = Findings()
    meta_path = root / "submission.json"
    if not meta_path.is_file():
        findings.reasons.append("submission.json is missing; see leaderboard/README.md for its fields")
    else:
        meta = read_json_strict(meta_path, "submission.json", findings.reasons)
        if meta is not None:
            errors = schema_errors(meta, "submission")
            findings.reasons.extend(f"submission.json: schema: {e}" for e in errors)
            findings.meta = meta if not errors else {}
    records, preds = _layout(root, findings.reasons)
    for path in records:
        check_record(root, path, preds, catalog, findings, board)
    referenced = {r["predictions"]["path"] for r in findings.records.values()}
    findings.reasons.extend(f"{p}: no record refers to it" for p in sorted(preds - referenced))
    check_duplicates(findings, index.contents, board.copy_min_errors)
    check_task_keys(findings, index)
    if findings.records:
        check_completeness(findings, catalog, board)
    return findings
