"""Corrupt and hostile sources: one line naming the file and what is wrong, exit 2, nothing written.

Each case builds its hostile input under tmp_path (watched too, so a source or manifest is never
modified) and runs one verb on it: `noise`, `noise audit`, `pretrain` or `evaluate`.
"""
from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from nmlbench.cli import main
from nmlbench.io import sha256_file

SYM = ["--type", "sym", "--rate", "40%"]
CAP = ["--type", "caption", "--rate", "40%"]
EVALUATE = ["evaluate", "--model", "tinyresnet", "--method", "lp", "--set", "pretrained=false", "--task"]
TINY = ["--set", "optim.epochs=1", "--set", "optim.batch_size=8", "--set", "model=nmlbench_tinyresnet"]


def _tar(path: Path, samples: list[dict[str, bytes]]) -> Path:
    """A webdataset shard: each sample {ext: bytes} with its '__key__'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for s in samples:
            for ext, data in s.items():
                if ext == "__key__":
                    continue
                info = tarfile.TarInfo(f"{s['__key__']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _shard(path: Path, n: int = 5, jpg: bytes = b"\xff\xd8", **override: dict[str, bytes]) -> Path:
    samples = [{"__key__": f"{k:03d}", "jpg": jpg, "txt": f"cap {k}".encode(), "cls": b"1"}
               for k in range(n)]
    for key, members in override.items():
        k = int(key[1:])
        samples[k] = {kk: v for kk, v in {**samples[k], **members}.items() if v is not None}
    return _tar(path, samples)


def _json_labels(path: Path, labels: list) -> Path:
    return _tar(path, [{"__key__": f"{k:03d}", "jpg": b"x",
                        "json": json.dumps({"label": y, "caption": "c"}).encode()}
                       for k, y in enumerate(labels)])


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _parquet(path: Path, **cols: list) -> Path:
    pq.write_table(pa.table(cols), path)
    return path


def _npz(path: Path, n: int = 12, **arrays: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    base = {"images": rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), "labels": np.arange(n) % 3}
    np.savez(path, **{**base, **arrays})
    return path


def _manifest(tmp: Path, edit: Callable[[Path], None] | None = None) -> Path:
    """A 10 % symmetric manifest of a 40-sample npz under tmp/m, then `edit`ed."""
    src = _npz(tmp / "src.npz", n=40, classes=np.array(["ant", "bee", "cow"]))
    assert main(["noise", "--npz", str(src), "--type", "sym", "--rate", "10%", "--out", str(tmp / "m")]) == 0
    if edit:
        edit(tmp / "m")
    return tmp / "m"


def _sidecar(**changes) -> Callable[[Path], None]:
    def edit(d: Path) -> None:
        meta = json.loads((d / "manifest.json").read_text())
        meta.update(changes)
        (d / "manifest.json").write_text(json.dumps(meta))
    return edit


def _rows(change: Callable, recount: bool = True) -> Callable[[Path], None]:
    """Edit the parquet's rows, then recompute the hash and the counts in the sidecar (a consistent
    forgery: only re-deriving the rows can tell)."""
    def edit(d: Path) -> None:
        from nmlbench.noise.manifest import summarize, write_parquet

        df = pq.read_table(d / "manifest.parquet").to_pandas()
        change(df)
        tbl = pa.Table.from_pandas(df, preserve_index=False)
        write_parquet(tbl, d / "manifest.parquet")
        counts = summarize(tbl, json.loads((d / "manifest.json").read_text())["classes"]) if recount else {}
        _sidecar(manifest_sha256=sha256_file(d / "manifest.parquet"), **counts)(d)
    return edit


def _swap_two_noisy(df) -> None:
    """Move one flip to another sample (same count: rates and class totals barely change)."""
    i, j = int(np.flatnonzero(df["corrupted"])[0]), int(np.flatnonzero(~df["corrupted"])[0])
    df.loc[[i, j], "noisy_label"] = df.loc[[j, i], "noisy_label"].to_numpy()
    df["corrupted"] = df["noisy_label"] != df["clean_label"]


def _cut_before_member(path: Path, index: int) -> Path:
    """The shard cut exactly where its `index`-th member's header starts (a clean-looking end)."""
    with tarfile.open(path) as tar:
        offset = tar.getmembers()[index].offset
    return _write(path, path.read_bytes()[:offset])


def _empty_first_id(df) -> None:
    df.loc[0, "sample_id"] = ""


def _task(tmp: Path, train: Path) -> str:
    test = _npz(tmp / "test.npz")
    spec = {"version": 1, "reader": "npz", "num_classes": 3,
            "params": {"files": {"train": str(train), "val": str(test), "test": str(test)}}}
    (tmp / "task.yaml").write_text(yaml.safe_dump(spec))
    return str(tmp / "task.yaml")


def _pretrain_npz(tmp: Path, rate: str, manifest: Path) -> list[str]:
    return ["pretrain", "--noise", rate, *TINY, "--set", "data.source=npz", "--set",
            f"data.path={tmp / 'src.npz'}", "--set", "data.name=own", "--set",
            f"data.manifest={manifest / 'manifest.parquet'}"]


# (id, build(tmp) -> argv, words the error line must contain). "new" marks breakages of the old code.
CASES: list[tuple[str, Callable[[Path], list[str]], list[str]]] = [
    # --- webdataset shards -------------------------------------------------------------------
    ("shard-truncated-mid-header", lambda t: ["noise", "--wds", str(_write(
        t / "s.tar", _shard(t / "g.tar").read_bytes()[:1500])), *CAP], ["s.tar", "truncated"]),
    ("new:shard-truncated-between-samples", lambda t: ["noise", "--wds", str(_cut_before_member(
        _shard(t / "s.tar"), 12)), *CAP], ["s.tar", "truncated"]),
    ("new:shard-garbage-bytes", lambda t: ["noise", "--wds", str(_write(
        t / "s.tar", np.random.default_rng(0).bytes(3000))), *CAP], ["s.tar", "could not be opened"]),
    ("shard-sample-without-caption", lambda t: ["noise", "--wds", str(_shard(
        t / "s.tar", s2={"txt": None})), *CAP], ["s.tar", "no captions"]),
    ("shard-sample-without-label", lambda t: ["noise", "--wds", str(_shard(
        t / "s.tar", s2={"cls": None})), *SYM], ["'002'", "no .cls"]),
    ("new:shard-caption-not-utf8", lambda t: ["noise", "--wds", str(_shard(
        t / "s.tar", s2={"txt": b"caf\xe9"})), *CAP], ["s.tar", "002.txt", "not utf-8", "re-encode"]),
    ("shard-labels-3-3.0-cat", lambda t: ["noise", "--wds", str(_json_labels(
        t / "s.tar", [1, "3", 3, 3.0, "cat"])), *SYM], ["s.tar", "3.0", "integer labels"]),
    ("shard-labels-int-and-name", lambda t: ["noise", "--wds", str(_json_labels(
        t / "s.tar", [1, 2, "cat", 0])), *SYM], ["s.tar", "mix integers", "'cat'"]),
    ("shard-label-bool", lambda t: ["noise", "--wds", str(_json_labels(
        t / "s.tar", [1, True, 0, 2])), *SYM], ["s.tar", "true", "integer labels"]),
    # --- tables ------------------------------------------------------------------------------
    ("new:csv-header-not-utf8", lambda t: ["noise", "--labels", str(_write(
        t / "a.csv", b"id,lab\xe9l\n1,0\n2,1\n3,0\n")), *SYM], ["a.csv", "not utf-8", "byte 0xe9"]),
    ("new:tsv-caption-header-not-utf8", lambda t: ["noise", "--captions", str(_write(
        t / "c.tsv", b"id\tcap\xfftion\n1\ta\n2\tb\n")), *CAP], ["c.tsv", "not utf-8"]),
    ("csv-label-value-not-utf8", lambda t: ["noise", "--labels", str(_write(
        t / "b.csv", b"id,label\n1,0\n2,caf\xe9\n3,0\n")), *SYM], ["b.csv", "not utf-8"]),
    ("new:csv-labels-3-cat-3.0", lambda t: ["noise", "--labels", str(_write(
        t / "d.csv", b"id,label\n1,3\n2,cat\n3,3.0\n")), *SYM], ["d.csv", "mix numbers", "'cat'"]),
    ("csv-negative-label", lambda t: ["noise", "--labels", str(_write(
        t / "e.csv", b"id,label\n1,3\n2,-1\n3,0\n")), *SYM], ["e.csv", "label -1"]),
    ("csv-label-out-of-range", lambda t: ["noise", "--labels", str(_write(
        t / "f.csv", b"id,label\n1,3\n2,1\n3,0\n")), *SYM, "--num-classes", "2"],
        ["label 3", "outside 0..1"]),
    ("csv-float-labels", lambda t: ["noise", "--labels", str(_write(
        t / "h.csv", b"id,label\n1,3.0\n2,1.5\n3,0\n")), *SYM], ["h.csv", "floating-point"]),
    ("new:csv-empty-id", lambda t: ["noise", "--labels", str(_write(
        t / "g.csv", b'id,label\n1,1\n"",1\n3,0\n')), *SYM], ["g.csv", "empty id"]),
    ("new:jsonl-not-utf8", lambda t: ["noise", "--labels", str(_write(
        t / "l.jsonl", b'{"id":"a","label":1}\n{"id":"b","lab\xff":2}\n')), *SYM], ["l.jsonl", "not utf-8"]),
    ("parquet-empty", lambda t: ["noise", "--labels", str(_parquet(
        t / "e.parquet", id=pa.array([], pa.string()), label=pa.array([], pa.int64()))), *SYM],
        ["no samples"]),
    ("parquet-null-label", lambda t: ["noise", "--labels", str(_parquet(
        t / "n.parquet", id=["a", "b", "c"], label=[1, None, 0])), *SYM], ["n.parquet", "empty 'label'"]),
    ("new:parquet-empty-string-id", lambda t: ["noise", "--labels", str(_parquet(
        t / "i.parquet", id=["a", "", "c"], label=[1, 2, 0])), *SYM], ["i.parquet", "null or empty id"]),
    ("parquet-truncated", lambda t: ["noise", "--labels", str(_write(
        t / "t.parquet", b"PAR1" + bytes(60))), *SYM], ["t.parquet", "cannot read"]),
    # --- numpy archives ----------------------------------------------------------------------
    ("new:npz-lengths-differ", lambda t: ["noise", "--npz", str(_npz(
        t / "m.npz", labels=np.arange(5) % 3)), *SYM], ["m.npz", "differ in length"]),
    ("npz-garbage", lambda t: ["noise", "--npz", str(_write(
        t / "g.npz", np.random.default_rng(1).bytes(400))), *SYM], ["g.npz", "not a zip archive"]),
    ("npz-truncated", lambda t: ["noise", "--npz", str(_write(
        t / "t.npz", _npz(t / "ok.npz").read_bytes()[:700])), *SYM], ["t.npz", ".npz"]),
    ("new:npz-empty-string-id", lambda t: ["noise", "--npz", str(_npz(
        t / "e.npz", ids=np.array([""] + [f"x{i}" for i in range(11)]))), *SYM], ["e.npz", "empty id"]),
    # --- noise audit: the manifest must be what its recipe makes -----------------------------
    ("new:audit-sidecar-rate", lambda t: ["noise", "audit", str(_manifest(
        t, _sidecar(nominal_rate=0.3)))], ["sym10", "30%"]),
    ("new:audit-sidecar-recipe", lambda t: ["noise", "audit", str(_manifest(
        t, _sidecar(recipe="sym30")))], ["sym30", "10%"]),
    ("new:audit-sidecar-seed", lambda t: ["noise", "audit", str(_manifest(
        t, _sidecar(seed=4)))], ["seed 4", "expected"]),
    ("new:audit-rate-and-recipe-forged", lambda t: ["noise", "audit", str(_manifest(
        t, _sidecar(nominal_rate=0.3, recipe="sym30")))], ["not what recipe 'sym30'", "row "]),
    ("audit-empty-sample-id", lambda t: ["noise", "audit", str(_manifest(
        t, _rows(_empty_first_id)))], ["sample_id", "empty id"]),
    ("new:audit-no-check-empty-sample-id", lambda t: ["noise", "audit", str(_manifest(
        t, _rows(_empty_first_id))), "--no-check"], ["sample_id", "empty id"]),
    ("new:audit-no-check-labels-swapped", lambda t: ["noise", "audit", str(_manifest(
        t, _rows(_swap_two_noisy))), "--no-check"], ["clean rows", "row "]),
    ("audit-source-gone", lambda t: ["noise", "audit", str(_manifest(
        t, lambda d: (t / "src.npz").unlink()))], ["cannot re-derive", "--no-check"]),
    # --- pretrain ----------------------------------------------------------------------------
    ("new:pretrain-sidecar-says-30", lambda t: _pretrain_npz(t, "30%", _manifest(
        t, _sidecar(nominal_rate=0.3, recipe="sym30"))), ["not what recipe 'sym30'"]),
    ("pretrain-manifest-hash-mismatch", lambda t: _pretrain_npz(t, "10%", _manifest(
        t, lambda d: _write(d / "manifest.parquet", (d / "manifest.parquet").read_bytes() + b"x"))),
        ["sha256", "sidecar"]),
    ("new:pretrain-shard-truncated-between-samples", lambda t: [
        "pretrain", "--noise", "0", *TINY, "--set", "optim.batch_size=2", "--set", "data.source=webdataset",
        "--set", f"data.path={_cut_before_member(_shard(t / 's.tar', jpg=_jpeg()), 12)}"],
        ["s.tar", "truncated"]),
    ("pretrain-npz-garbage", lambda t: [
        "pretrain", "--noise", "0", *TINY, "--set", "data.source=npz", "--set",
        f"data.path={_write(t / 'g.npz', b'PK' + bytes(100))}"], ["g.npz", "not a zip archive"]),
    # --- task readers (evaluate) -------------------------------------------------------------
    ("new:evaluate-task-npz-garbage", lambda t: [*EVALUATE, _task(t, _write(
        t / "train.npz", b"garbage" * 40))],
        ["train.npz", "not a zip archive"]),
    ("new:evaluate-task-npz-lengths", lambda t: [*EVALUATE, _task(t, _npz(
        t / "train.npz", labels=np.arange(7) % 3))],
        ["train.npz", "12 images but 7"]),
]


@pytest.mark.parametrize("build, expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_corrupt_source_is_one_line(tmp_path: Path, reject, build, expect) -> None:
    argv = build(tmp_path)
    reject(argv, expect=expect, watch=[tmp_path])


def test_task_image_that_does_not_decode_names_the_file(tmp_path: Path, capsys) -> None:
    """ImageFolder tasks decode at read time: a damaged image is one line naming it, not a traceback.

    (The nothing-written part of the contract for `evaluate` is the write-order checks' business.)
    """
    from PIL import Image

    for split in ("train", "val", "test"):
        for c in ("a", "b", "c"):
            d = tmp_path / "if" / split / c
            d.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(d / f"{i}.png")
    _write(tmp_path / "if" / "train" / "b" / "bad.png", b"\x89PNG not really")
    spec = {"version": 1, "reader": "image_folder", "num_classes": 3,
            "params": {"root": str(tmp_path / "if")}}
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(spec))
    capsys.readouterr()
    code = main(["evaluate", "--model", "tinyresnet", "--method", "lp", "--task", str(tmp_path / "t.yaml"),
                 "--set", "pretrained=false"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "bad.png" in err and "replace or remove" in err

