"""Hostile text that is accepted and shown harmlessly; builds that fail or die leave one whole set."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lb_fakes import FakeCatalog, Model, make_submission, study_models

from nmlbench.errors import UserError
from nmlbench.leaderboard import page, publish
from nmlbench.leaderboard.build import build
from nmlbench.leaderboard.content import content_hash, decode_predictions
from nmlbench.leaderboard.submit import normalise_name, submit
from nmlbench.leaderboard.text import clean_text, csv_cell, md_cell

OUTPUTS = ("LEADERBOARD.md", "leaderboard.csv", "index.html", "build-config.yaml")
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


def _accept(tmp_path: Path, lb: Path, name: str, author: str = "A. Tester", **kw) -> Path:
    sub = make_submission(
        tmp_path / normalise_name(name).replace("-", "_") / "s", name=name, author=author, **kw
    )
    res = submit(sub, lb, FakeCatalog())
    assert res.accepted, res.reasons
    return res.dest


def _snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "submissions" not in p.relative_to(out).parts
    }


# --- names of any script ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,slug",
    [
        ("Шум 30 %", "шум-30"),
        ("ノイズ耐性 v2", "ノイズ耐性-v2"),
        ("Café crème", "cafe-creme"),  # accented Latin folds to ASCII, as before
        ("Cafe\u0301", "cafe"),  # NFD input: same folder as NFC
        ("Ｍｙ Ｍｅｔｈｏｄ", "my-method"),  # full-width look-alikes share a folder
        ("Bad\u202eName\u200f", "badname"),
    ],
)
def test_folder_names_keep_letters_of_any_script(name: str, slug: str) -> None:
    assert normalise_name(name) == slug


def test_non_latin_name_is_accepted_and_shown(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    dest = _accept(tmp_path, lb, "Шум-устойчивый метод", author="李雷")
    assert dest.name == "шум-устойчивый-метод"
    build(lb, plots=False)
    md = (lb / "LEADERBOARD.md").read_text(encoding="utf-8")
    assert "Шум-устойчивый метод" in md and "李雷" in md


# --- one sanitizer: at submit time and at render time ---------------------------------------


def test_control_and_bidi_characters_are_stripped_when_stored_and_shown(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    dest = _accept(tmp_path, lb, f"Good{BIDI}\x07\x1b[31m\u0085Name", author="Eve\u202egnirts\nX\ud800")
    meta = json.loads((dest / "submission.json").read_text(encoding="utf-8"))
    assert meta["name"] == "Good[31m Name" and meta["author"] == "Evegnirts X"
    # a record's own text (method name) is stored as evaluated and cleaned when shown
    for rec_path in dest.glob("*__*.json"):
        rec = json.loads(rec_path.read_text())
        rec["method"]["name"] = "lp\u202e\u2066evil\x00"
        rec_path.write_text(json.dumps(rec), encoding="utf-8")
    build(lb, plots=False)
    for name in ("LEADERBOARD.md", "leaderboard.csv", "index.html"):
        text = (lb / name).read_text(encoding="utf-8")
        assert not any(ch in text for ch in BIDI + "\x00\x07\x1b\x85"), name
        assert "lpevil" in text


def test_clean_text_is_one_line_and_nfc() -> None:
    assert clean_text(" a\tb\r\nc\u2028d  e ") == "a b c d e"
    assert clean_text("e\u0301") == "é"
    assert clean_text("\u3164\u200b") == ""


# --- markdown: nothing in a name links, embeds, formats or renders as HTML ---------------------

HOSTILE_MD = [
    "[Trusted](https://evil.example/steal)",
    "![pixel](https://tracker.example/p.png)",
    "<img src=x onerror=alert(1)>",
    "<https://evil.example>",
    "**bold** _em_ ~~gone~~ `code`",
    "$\\frac{1}{$",
    "a|b",
]


@pytest.mark.parametrize("name", HOSTILE_MD)
def test_markdown_cells_render_as_plain_text(name: str) -> None:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    table = f"| h | x |\n|---|---|\n| {md_cell(name)} | 1 |\n"
    html_out = md.render(table)
    for tag in ("<a ", "<img", "<strong", "<em", "<s>", "<del", "<code", "<script"):
        assert tag not in html_out, (name, html_out)
    assert html_out.count("<td>") == 2  # the pipe did not split the cell
    cell = html_out.split("<td>")[1].split("</td>")[0]
    import html

    assert html.unescape(cell) == name  # shown literally, every character


def test_markdown_escapes_autolink_triggers() -> None:
    # GFM turns bare URLs, www. names and e-mail addresses into links; the escapes break each trigger
    assert md_cell("see https://evil.example") == "see https\\://evil.example"
    assert md_cell("www.evil.example") == "www\\.evil.example"
    assert md_cell("me@evil.example") == "me\\@evil.example"
    assert md_cell("symmetric_label") == "symmetric_label"  # intraword _ stays readable


# --- CSV: no cell a spreadsheet would evaluate -------------------------------------------------


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("https://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", " =1", "\r=1"]
)
def test_csv_cells_never_start_a_formula(text: str) -> None:
    assert csv_cell(text).startswith("'")
    assert csv_cell("NMTune (v2)") == "NMTune (v2)"


def test_built_csv_has_no_formula_cells(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    _accept(tmp_path, lb, '=HYPERLINK("https://evil.example","Best")', author="@SUM(1+1)")
    build(lb, plots=False)
    with open(lb / "leaderboard.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    cells = [c for row in rows for c in row]
    assert any(c.startswith("'=HYPERLINK") for c in cells) and "'@SUM(1+1)" in cells
    assert not any(c[:1] in ("=", "+", "@", "\t", "\r") for c in cells)
    assert not any(c.startswith("-") and not c.lstrip("-").replace(".", "").isdigit() for c in cells)


# --- the page: everything escaped, `</script>` included ----------------------------------------


def test_page_escapes_a_name_that_closes_the_script(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    _accept(tmp_path, lb, "x</script><script>alert(1)</script>", author="</title><svg onload=alert(1)>")
    build(lb, plots=False)
    text = (lb / "index.html").read_text(encoding="utf-8")
    assert text.count("<script") == 1 and text.count("</script>") == 1
    assert "<svg" not in text and text.count("</title>") == 1
    assert "x&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text


# --- figures: text is literal -------------------------------------------------------------------


def test_mathtext_names_build_every_output(tmp_path: Path) -> None:
    """Regression: a method named `$\\frac{1}{$` broke every later build, half-way."""
    lb = tmp_path / "lb"
    dest = _accept(tmp_path, lb, "Math", models=study_models((0.0, 0.3), (0,)))
    for rec_path in dest.glob("*__*.json"):
        rec = json.loads(rec_path.read_text())
        rec["method"]["name"] = "$\\frac{1}{$"
        rec["model"]["data"] = "$x^$"
        rec_path.write_text(json.dumps(rec), encoding="utf-8")
    written = build(lb)
    assert {p.name for p in written} >= {*OUTPUTS, "accuracy_vs_noise.png", "delta_heatmap.svg"}
    assert "\\$\\\\frac{1}{\\$" in (lb / "LEADERBOARD.md").read_text(encoding="utf-8")


# --- predictions: content, not encoding ----------------------------------------------------------


def test_predictions_decode_the_same_however_encoded() -> None:
    ids = ["b", "a", "c"]
    plain = pa.table({"sample_id": ids, "label": pa.array([0, 1, 2], pa.int64()), "pred": [2, 1, 0]})
    other = pa.table(
        {
            "pred": pa.array([2, 1, 0], pa.uint8()),
            "label": pa.array([0, 1, 2], pa.int32()),
            "sample_id": pa.array(ids, pa.large_string()).dictionary_encode(),
        }
    )
    a, b = decode_predictions(plain), decode_predictions(other)
    assert all((x == y).all() and x.dtype == y.dtype for x, y in zip(a, b, strict=True))
    assert content_hash("t", a[0], a[2]) == content_hash("t", b[0], b[2])


def test_reencoded_predictions_of_an_honest_submission_are_accepted(tmp_path: Path) -> None:
    sub = make_submission(tmp_path / "s")
    for rec_path in sorted(p for p in sub.glob("*.json") if p.name != "submission.json"):
        rec = json.loads(rec_path.read_text())
        ppath = sub / rec["predictions"]["path"]
        t = pq.read_table(ppath)
        pq.write_table(
            pa.table({"pred": t["pred"].cast(pa.int32()), "label": t["label"], "sample_id": t["sample_id"]}),
            ppath,
            compression="zstd",
        )
        import hashlib

        rec["predictions"]["sha256"] = hashlib.sha256(ppath.read_bytes()).hexdigest()
        rec_path.write_text(json.dumps(rec))
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons


# --- leftovers of interrupted writes; check writes nothing ---------------------------------------


def test_temporary_leftovers_in_a_results_folder_are_ignored(tmp_path: Path) -> None:
    sub = make_submission(tmp_path / "s")
    (sub / ".tinynet.abcd_123.tmp.json").write_text('{"half": ')
    (sub / "predictions" / ".x.k2j3h4k5.tmp.parquet").write_bytes(b"PAR1")
    (sub / ".mini.q1w2e3r4.tmp").mkdir()
    (sub / ".mini.q1w2e3r4.tmp" / "r.json").write_text("{")
    res = submit(sub, tmp_path / "lb", FakeCatalog())
    assert res.accepted, res.reasons
    assert not [p for p in res.dest.rglob("*") if ".tmp" in p.name]


def test_check_runs_every_check_and_writes_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    import nmlbench.leaderboard.catalog as catalog
    from nmlbench.cli import main

    monkeypatch.setattr(catalog, "NmlbenchCatalog", lambda data_root=None: FakeCatalog())
    sub = make_submission(tmp_path / "s", name="Шум")
    assert main(["leaderboard", "check", str(sub), "--leaderboard-dir", str(tmp_path / "lb")]) == 0
    assert "passes every check; it would be accepted as 'шум'" in capsys.readouterr().out
    assert not (tmp_path / "lb").exists()


# --- a damaged submission on the board: build skips it, says so ----------------------------------


def test_build_skips_a_damaged_submission_with_a_warning(tmp_path: Path, caplog) -> None:
    lb = tmp_path / "lb"
    _accept(tmp_path, lb, "Good one")
    bad = _accept(tmp_path, lb, "Broken one", models=(Model(rate=0.1),))
    next(bad.glob("*__*.json")).write_text('{"top1": 1e400}')
    build(lb, plots=False)
    md = (lb / "LEADERBOARD.md").read_text(encoding="utf-8")
    assert "Good one" in md and "Broken one" not in md
    assert any("broken-one" in r.getMessage() and "1e400" in r.getMessage() for r in caplog.records)


# --- build: all outputs or none ------------------------------------------------------------------


@pytest.fixture
def built(tmp_path: Path) -> Path:
    lb = tmp_path / "lb"
    _accept(tmp_path, lb, "First")
    build(lb, plots=False)
    return lb


def test_failing_build_leaves_previous_outputs_intact(built: Path, tmp_path: Path, monkeypatch) -> None:
    """Regression: a build failing after the markdown and CSV had been replaced left index.html stale."""
    before = _snapshot(built)
    _accept(tmp_path, built, "Second", models=(Model(rate=0.2),))

    def boom(*a, **k):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(page, "render", boom)
    with pytest.raises(RuntimeError):
        build(built, plots=False)
    assert _snapshot(built) == before
    assert not [p for p in built.iterdir() if p.name.startswith(".build")]


def test_build_into_a_new_folder_that_fails_leaves_no_folder(tmp_path: Path, monkeypatch) -> None:
    lb = tmp_path / "lb"
    _accept(tmp_path, lb, "First")
    monkeypatch.setattr(page, "render", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build(lb, out_dir=tmp_path / "site" / "deep", plots=False)
    assert not (tmp_path / "site").exists()


KILL_SCRIPT = """
import os, signal, sys
from nmlbench.leaderboard import page, publish
from nmlbench.leaderboard.build import build
where, k = sys.argv[2], int(sys.argv[3])
if where == "render":
    page.render = lambda *a, **kw: os.kill(os.getpid(), signal.SIGKILL)
else:  # die after the k-th rename of the swap
    calls = []
    real = publish.os.replace
    def replace(src, dst):
        real(src, dst)
        if publish.COMMIT in str(src):  # a rename of the swap, not a write while rendering
            calls.append(dst)
        if len(calls) == k:
            os.kill(os.getpid(), signal.SIGKILL)
    publish.os.replace = replace
build(sys.argv[1], plots=False)
"""


def _killed_build(lb: Path, where: str, k: int = 0) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(lb), where, str(k)], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]


def test_build_killed_while_rendering_leaves_previous_outputs(built: Path, tmp_path: Path) -> None:
    before = _snapshot(built)
    _accept(tmp_path, built, "Second", models=(Model(rate=0.2),))
    _killed_build(built, "render")
    assert {k: v for k, v in _snapshot(built).items() if not k.startswith(".build")} == before
    publish.recover(built)  # what the next build does first: the dead stage is swept
    assert _snapshot(built) == before


@pytest.mark.parametrize("k", [2])
def test_build_killed_while_swapping_is_completed_by_the_next_one(
    built: Path, tmp_path: Path, k: int
) -> None:
    _accept(tmp_path, built, "Second", models=(Model(rate=0.2),))
    reference = tmp_path / "reference"
    build(built, out_dir=reference, plots=False)
    _killed_build(built, "swap", k)
    assert (built / publish.COMMIT).is_dir()  # committed, not yet fully in place
    publish.recover(built)
    assert _snapshot(built) == _snapshot(reference)


def test_two_builds_into_one_folder_do_not_interleave(built: Path) -> None:
    fd = os.open(built, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another `nmlbench leaderboard build` is writing"):
            build(built, plots=False)
    finally:
        os.close(fd)
