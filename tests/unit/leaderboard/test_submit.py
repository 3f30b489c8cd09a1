"""Submissions: a valid one is accepted whole; every kind of bad one is rejected, leaving nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lb_fakes import FakeCatalog, Model, make_submission

from nmlbench.leaderboard.archive import Limits
from nmlbench.leaderboard.board import BoardConfig
from nmlbench.leaderboard.submit import normalise_name, submit


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return make_submission(tmp_path / "sub", models=(Model(rate=0.0), Model(rate=0.2)), seeds=(0, 1))


def _records(sub: Path) -> list[Path]:
    return sorted(p for p in sub.glob("*.json") if p.name != "submission.json")


def _edit(sub: Path, fn: Callable[[dict], None], which: int = 0) -> Path:
    path = _records(sub)[which]
    rec = json.loads(path.read_text())
    fn(rec)
    path.write_text(json.dumps(rec))
    return path


def _rewrite_predictions(sub: Path, which: int, fn: Callable[[dict], dict]) -> None:
    """Change a predictions file and update its hash, so only the deeper checks can catch it."""
    rec_path = _records(sub)[which]
    rec = json.loads(rec_path.read_text())
    ppath = sub / rec["predictions"]["path"]
    cols = fn(pq.read_table(ppath).to_pydict())
    pq.write_table(pa.table(cols), ppath)
    rec["predictions"]["sha256"] = hashlib.sha256(ppath.read_bytes()).hexdigest()
    rec_path.write_text(json.dumps(rec))


def _tar_with(sub: Path, dest: Path, extra: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(sub, arcname="sub")
        extra(tf)
    return dest


def _add_bytes(
    tf: tarfile.TarFile, name: str, data: bytes, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, (len(data) if kind == tarfile.REGTYPE else 0)
    tf.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _snapshot(lb: Path) -> list[str]:
    return sorted(str(p.relative_to(lb)) for p in lb.rglob("*")) if lb.exists() else []


def test_valid_submission_is_accepted_as_directory(good: Path, tmp_path: Path) -> None:
    res = submit(good, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons
    assert res.dest == tmp_path / "lb" / "submissions" / "tiny-baseline"
    assert sorted(p.name for p in res.dest.iterdir()) == sorted(p.name for p in good.iterdir())
    assert len(list((res.dest / "predictions").iterdir())) == len(_records(good))


@pytest.mark.parametrize("fmt", ["gztar", "zip", "tar"])
def test_valid_submission_is_accepted_as_archive(good: Path, tmp_path: Path, fmt: str) -> None:
    archive = shutil.make_archive(str(tmp_path / "sub-archive"), fmt, root_dir=good.parent, base_dir="sub")
    res = submit(archive, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons
    assert (res.dest / "submission.json").is_file()


def test_evaluate_configs_are_kept_as_provenance(good: Path, tmp_path: Path) -> None:
    (good / "configs").mkdir()
    (good / "configs" / "0123abcd.yaml").write_text("lp:\n  epochs: 30\n")
    res = submit(good, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons
    assert (res.dest / "configs" / "0123abcd.yaml").read_text() == "lp:\n  epochs: 30\n"


def test_two_methods_may_agree_on_one_checkpoint(tmp_path: Path) -> None:
    """Identical predictions of two methods on the same checkpoint are not a copy (e.g. both constant)."""
    sub = make_submission(tmp_path / "sub", models=(Model(rate=0.0),), methods=("lp", "mlp"))
    recs = [json.loads(p.read_text()) for p in _records(sub)]
    a, b = next(
        (a, b)
        for a in recs
        for b in recs
        if a["task"] == b["task"] and a["method"]["name"] == "lp" and b["method"]["name"] == "mlp"
    )
    shutil.copyfile(sub / a["predictions"]["path"], sub / b["predictions"]["path"])
    b["predictions"]["sha256"], b["metrics"] = a["predictions"]["sha256"], a["metrics"]
    (sub / f"{b['run_id']}.json").write_text(json.dumps(b))
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons


def test_names_are_normalised() -> None:
    assert normalise_name("My Method (v2)!") == "my-method-v2"
    assert normalise_name("Ünïcödé  name") == "unicode-name"
    assert normalise_name("../../etc") == "etc"
    assert normalise_name("<script>") == "script"


def _bad_schema_range(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["metrics"].update(top1=140.0))
    return sub


def _bad_schema_missing(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r.pop("env"))
    return sub


def _bad_schema_extra(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r.update(surprise=1))
    return sub


def _bad_top1(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["metrics"].update(top1=min(100.0, r["metrics"]["top1"] + 5)))
    return sub


def _bad_f1(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["metrics"].update(macro_f1=abs(r["metrics"]["macro_f1"] - 3)))
    return sub


def _missing_task(sub: Path, tmp: Path) -> Path:
    path = _records(sub)[0]
    (sub / json.loads(path.read_text())["predictions"]["path"]).unlink()
    path.unlink()
    return sub


def _unknown_version(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["task"].update(version=r["task"]["version"] + 7))
    return sub


def _unknown_task(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["task"].update(name="not-a-task"))
    return sub


def _unknown_suite(sub: Path, tmp: Path) -> Path:
    for i in range(len(_records(sub))):
        _edit(sub, lambda r: r.update(suite="nosuchsuite"), i)
    return sub


def _tampered_hash(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["predictions"].update(sha256="0" * 64))
    return sub


def _tampered_labels(sub: Path, tmp: Path) -> Path:
    _rewrite_predictions(sub, 0, lambda c: {**c, "label": [(v + 1) % 3 for v in c["label"]]})
    return sub


def _subset_ids(sub: Path, tmp: Path) -> Path:
    _rewrite_predictions(sub, 0, lambda c: {k: v[:-2] for k, v in c.items()})
    return sub


def _pred_out_of_range(sub: Path, tmp: Path) -> Path:
    _rewrite_predictions(sub, 0, lambda c: {**c, "pred": [99] + c["pred"][1:]})
    return sub


def _float_preds(sub: Path, tmp: Path) -> Path:
    _rewrite_predictions(sub, 0, lambda c: {**c, "pred": [float(v) for v in c["pred"]]})
    return sub


def _duplicate_predictions(sub: Path, tmp: Path) -> Path:
    """One checkpoint's predictions filed again under another checkpoint."""
    recs = [json.loads(p.read_text()) for p in _records(sub)]
    a, b = next(
        (a, b)
        for a in recs
        for b in recs
        if a["task"] == b["task"] and a["model"]["name"] != b["model"]["name"] and a["seed"] == b["seed"]
    )
    shutil.copyfile(sub / a["predictions"]["path"], sub / b["predictions"]["path"])
    b["predictions"]["sha256"], b["metrics"] = a["predictions"]["sha256"], a["metrics"]
    (sub / f"{b['run_id']}.json").write_text(json.dumps(b))
    return sub


def _config_not_mapping(sub: Path, tmp: Path) -> Path:
    (sub / "configs").mkdir()
    (sub / "configs" / "abc.yaml").write_text("- just\n- a list\n")
    return sub


def _config_python_tag(sub: Path, tmp: Path) -> Path:
    (sub / "configs").mkdir()
    (sub / "configs" / "abc.yaml").write_text("x: !!python/object/apply:os.system ['true']\n")
    return sub


def _pickle_as_parquet(sub: Path, tmp: Path) -> Path:
    import pickle

    def swap(r: dict) -> None:
        p = sub / r["predictions"]["path"]
        p.write_bytes(pickle.dumps({"x": 1}))
        r["predictions"]["sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()

    _edit(sub, swap)
    return sub


def _no_checkpoint_hash(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["model"].update(checkpoint_sha256=None))
    return sub


def _no_manifest_hash(sub: Path, tmp: Path) -> Path:
    _edit(sub, lambda r: r["model"].update(manifest_sha256=None))
    return sub


def _renamed_record(sub: Path, tmp: Path) -> Path:
    path = _records(sub)[0]
    path.rename(sub / "renamed.json")
    return sub


def _non_utf8(sub: Path, tmp: Path) -> Path:
    path = _records(sub)[0]
    path.write_bytes(
        path.read_text().replace("A. Tester", "x").encode("utf-8").replace(b'"cpu"', b'"\xff\xfe"')
    )
    return sub


def _nan_json(sub: Path, tmp: Path) -> Path:
    path = _records(sub)[0]
    path.write_text(path.read_text().replace('"wall_time_s": 1.5', '"wall_time_s": NaN'))
    return sub


def _duplicate_keys(sub: Path, tmp: Path) -> Path:
    path = _records(sub)[0]
    path.write_text(path.read_text().replace('"seed": 0,', '"seed": 0, "seed": 1,', 1))
    return sub


def _pickle_file(sub: Path, tmp: Path) -> Path:
    (sub / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    return sub


def _orphan_predictions(sub: Path, tmp: Path) -> Path:
    shutil.copyfile(next((sub / "predictions").iterdir()), sub / "predictions" / "orphan.parquet")
    return sub


def _no_meta(sub: Path, tmp: Path) -> Path:
    (sub / "submission.json").unlink()
    return sub


def _meta_no_name(sub: Path, tmp: Path) -> Path:
    meta = json.loads((sub / "submission.json").read_text())
    (sub / "submission.json").write_text(json.dumps({**meta, "name": "<<>>"}))
    return sub


def _symlink_in_dir(sub: Path, tmp: Path) -> Path:
    (sub / "predictions" / "link.parquet").symlink_to("/etc/passwd")
    return sub


def _fifo_in_dir(sub: Path, tmp: Path) -> Path:
    os.mkfifo(sub / "pipe.json")
    return sub


def _tar_traversal(sub: Path, tmp: Path) -> Path:
    return _tar_with(sub, tmp / "t.tar.gz", lambda tf: _add_bytes(tf, "sub/../../evil.json", b"{}"))


def _tar_absolute(sub: Path, tmp: Path) -> Path:
    return _tar_with(sub, tmp / "t.tar.gz", lambda tf: _add_bytes(tf, "/tmp/evil.json", b"{}"))


def _tar_symlink(sub: Path, tmp: Path) -> Path:
    return _tar_with(
        sub,
        tmp / "t.tar.gz",
        lambda tf: _add_bytes(tf, "sub/predictions/x.parquet", b"", tarfile.SYMTYPE, "/etc/passwd"),
    )


def _tar_hardlink(sub: Path, tmp: Path) -> Path:
    return _tar_with(
        sub, tmp / "t.tar.gz", lambda tf: _add_bytes(tf, "sub/y.json", b"", tarfile.LNKTYPE, "/etc/passwd")
    )


def _tar_device(sub: Path, tmp: Path) -> Path:
    return _tar_with(sub, tmp / "t.tar.gz", lambda tf: _add_bytes(tf, "sub/dev", b"", tarfile.CHRTYPE))


def _zip_traversal(sub: Path, tmp: Path) -> Path:
    with zipfile.ZipFile(tmp / "z.zip", "w") as zf:
        zf.writestr("../evil.json", "{}")
        zf.writestr("sub/submission.json", (sub / "submission.json").read_text())
    return tmp / "z.zip"


def _zip_symlink(sub: Path, tmp: Path) -> Path:
    with zipfile.ZipFile(tmp / "z.zip", "w") as zf:
        info = zipfile.ZipInfo("sub/predictions/a.parquet")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return tmp / "z.zip"


def _zip_bomb(sub: Path, tmp: Path) -> Path:
    with zipfile.ZipFile(tmp / "z.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("sub/big.json", b"0" * 300_000)
    return tmp / "z.zip"


def _huge_file(sub: Path, tmp: Path) -> Path:
    (sub / "predictions" / "huge.parquet").write_bytes(b"\0" * 300_000)
    return sub


def _empty_tar(sub: Path, tmp: Path) -> Path:
    tarfile.open(tmp / "e.tar.gz", "w:gz").close()
    return tmp / "e.tar.gz"


def _empty_zip(sub: Path, tmp: Path) -> Path:
    zipfile.ZipFile(tmp / "e.zip", "w").close()
    return tmp / "e.zip"


def _corrupt_archive(sub: Path, tmp: Path) -> Path:
    (tmp / "c.tar.gz").write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    return tmp / "c.tar.gz"


def _wrong_kind(sub: Path, tmp: Path) -> Path:
    (tmp / "results.rar").write_bytes(b"Rar!")
    return tmp / "results.rar"


BAD: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "schema-range": (_bad_schema_range, "schema: metrics/top1"),
    "schema-missing-field": (_bad_schema_missing, "'env' is a required property"),
    "schema-extra-field": (_bad_schema_extra, "Additional properties"),
    "wrong-top1": (_bad_top1, "metrics.top1 claims"),
    "wrong-macro-f1": (_bad_f1, "metrics.macro_f1 claims"),
    "missing-task": (_missing_task, "missing task(s)"),
    "unknown-task-version": (_unknown_version, "does not exist here"),
    "unknown-task": (_unknown_task, "unknown task 'not-a-task'"),
    "unknown-suite": (_unknown_suite, "suite 'nosuchsuite' is unknown"),
    "tampered-hash": (_tampered_hash, "predictions.sha256 does not match"),
    "tampered-labels": (_tampered_labels, "label column differs"),
    "subset-of-samples": (_subset_ids, "sample ids differ"),
    "prediction-out-of-range": (_pred_out_of_range, "outside the class range"),
    "float-predictions": (_float_preds, "column pred must hold integers"),
    "duplicate-predictions": (_duplicate_predictions, "evaluated on another checkpoint"),
    "pickle-disguised-as-parquet": (_pickle_as_parquet, "not a parquet file"),
    "config-not-a-mapping": (_config_not_mapping, "a config must be a YAML mapping"),
    "config-with-python-tag": (_config_python_tag, "not a readable UTF-8 YAML config"),
    "no-checkpoint-hash": (_no_checkpoint_hash, "checkpoint_sha256 is missing"),
    "no-manifest-hash": (_no_manifest_hash, "manifest_sha256 is missing"),
    "record-not-named-by-run-id": (_renamed_record, "named after its run_id"),
    "non-utf8": (_non_utf8, "not UTF-8"),
    "nan-in-json": (_nan_json, "not valid JSON"),
    "duplicate-json-keys": (_duplicate_keys, "duplicate key"),
    "pickle-file": (_pickle_file, "model.pkl: unexpected file"),
    "orphan-predictions": (_orphan_predictions, "no record refers to it"),
    "no-submission-json": (_no_meta, "submission.json is missing"),
    "name-without-letters": (_meta_no_name, "no letters or digits"),
    "symlink-in-dir": (_symlink_in_dir, "symbolic links are not allowed"),
    "fifo-in-dir": (_fifo_in_dir, "not a regular file"),
    "tar-path-traversal": (_tar_traversal, "path traversal"),
    "tar-absolute-path": (_tar_absolute, "an absolute path"),
    "tar-symlink": (_tar_symlink, "links are not allowed"),
    "tar-hardlink": (_tar_hardlink, "links are not allowed"),
    "tar-device": (_tar_device, "not a regular file"),
    "zip-path-traversal": (_zip_traversal, "path traversal"),
    "zip-symlink": (_zip_symlink, "links are not allowed"),
    "zip-bomb": (_zip_bomb, "byte limit per file"),
    "huge-file": (_huge_file, "byte limit per file"),
    "empty-tar": (_empty_tar, "empty"),
    "empty-zip": (_empty_zip, "empty"),
    "corrupt-archive": (_corrupt_archive, "not a readable tar archive"),
    "not-an-archive": (_wrong_kind, "not a directory or a"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_submission_is_rejected_and_leaves_nothing(good: Path, tmp_path: Path, case: str) -> None:
    make, expected = BAD[case]
    lb = tmp_path / "lb"
    (lb / "submissions").mkdir(parents=True)
    before = _snapshot(lb)
    limits = Limits(max_file_bytes=200_000, max_total_bytes=2_000_000)
    # the fakes' test splits hold a few dozen samples: any shared table counts as a copy here
    res = submit(make(good, tmp_path), lb, FakeCatalog(), limits, board=BoardConfig(copy_min_errors=0))
    assert not res.accepted
    assert any(expected in r for r in res.reasons), res.reasons
    assert _snapshot(lb) == before
    assert not (tmp_path / "evil.json").exists() and not Path("/tmp/evil.json").exists()


def test_total_size_limit(good: Path, tmp_path: Path) -> None:
    res = submit(good, tmp_path / "lb", FakeCatalog(), Limits(max_total_bytes=5_000))
    assert not res.accepted and any("total limit" in r for r in res.reasons)


def test_resubmission_and_name_clash_are_rejected(good: Path, tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    assert submit(good, lb, FakeCatalog()).accepted
    before = _snapshot(lb)
    again = submit(good, lb, FakeCatalog())
    assert not again.accepted
    assert any("already submitted (in tiny-baseline)" in r for r in again.reasons)
    assert any("named 'tiny-baseline' already exists" in r for r in again.reasons)
    other = make_submission(tmp_path / "other", models=(Model(rate=0.5),))
    assert not submit(other, lb, FakeCatalog()).accepted  # same name, new content
    assert _snapshot(lb) == before


def test_html_in_names_is_accepted_as_data(tmp_path: Path) -> None:
    sub = make_submission(
        tmp_path / "x", name='<img src=x onerror="alert(1)">', author="<script>alert(1)</script>"
    )
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons
    assert res.dest.name == "img-src-x-onerror-alert-1"


def test_every_reason_is_reported_together(good: Path, tmp_path: Path) -> None:
    _bad_top1(good, tmp_path)
    _pickle_file(good, tmp_path)
    _no_checkpoint_hash(good, tmp_path)
    res = submit(good, tmp_path / "lb", FakeCatalog())
    text = "\n".join(res.reasons)
    assert "metrics.top1 claims" in text and "model.pkl" in text and "checkpoint_sha256" in text


def test_checker_metrics_match_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    from nmlbench.eval.metrics import macro_f1, top1

    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 5, 200), rng.integers(0, 6, 200)
    assert top1(labels, preds) == pytest.approx(100 * metrics.accuracy_score(labels, preds))
    assert macro_f1(labels, preds) == pytest.approx(100 * metrics.f1_score(labels, preds, average="macro"))
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 0])) == pytest.approx(100 * (0.8 + 0) / 2)
