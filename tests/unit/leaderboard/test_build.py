"""`leaderboard build`: markdown, CSV and a self-contained, escaped page; CLI exit codes."""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

import pandas as pd
import pytest
from lb_fakes import FakeCatalog, Model, make_submission, study_models

from nmlbench.cli import main
from nmlbench.errors import UserError
from nmlbench.leaderboard import page
from nmlbench.leaderboard.build import build
from nmlbench.leaderboard.submit import submit

EVIL_NAME = '<img src=x onerror="alert(1)">'
EVIL_AUTHOR = "<script>alert(1)</script>"


@pytest.fixture
def board(tmp_path: Path) -> Path:
    lb = tmp_path / "lb"
    good = make_submission(
        tmp_path / "a", models=study_models((0.0, 0.3), (0,)), methods=("lp", "nmtune"), spectrum=True
    )
    evil = make_submission(
        tmp_path / "b", name=EVIL_NAME, author=EVIL_AUTHOR, models=(Model("evilnet", 0.0),)
    )
    assert submit(good, lb, FakeCatalog()).accepted and submit(evil, lb, FakeCatalog()).accepted
    return lb


def test_build_writes_markdown_csv_page_and_figures(board: Path) -> None:
    written = build(board)
    names = {p.name for p in written}
    assert {"LEADERBOARD.md", "leaderboard.csv", "index.html", "build-config.yaml", "spectra.png"} <= names
    csv = pd.read_csv(board / "leaderboard.csv")
    assert len(csv) == 5 and {
        "id_avg_mean",
        "ood_delta_sd_pretrain",
        "ood_delta_sd_tune",
        "fake-a_mean",
        "n_seeds",
        "flags",
    } <= set(csv.columns)
    md = (board / "LEADERBOARD.md").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md and "<script>" not in md


def test_page_is_self_contained_escaped_and_locked_down(board: Path) -> None:
    build(board)
    text = (board / "index.html").read_text()
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert len(re.findall(r"<script>", text)) == 1
    assert not re.search(r"(src|href)=\"(https?:)?//", text), "the page must not load anything from a network"
    digest = base64.b64encode(hashlib.sha256(page.SCRIPT.encode()).digest()).decode()
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text).group(1))
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert text.count('src="data:image/png;base64,') == 4


def test_build_is_deterministic(board: Path, tmp_path: Path) -> None:
    build(board, out_dir=tmp_path / "one")
    build(board, out_dir=tmp_path / "two")
    for name in ("LEADERBOARD.md", "leaderboard.csv", "index.html"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_build_without_submissions_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no submissions"):
        build(tmp_path)
    assert main(["leaderboard", "build", "--leaderboard-dir", str(tmp_path)]) == 2


def test_cli_submit_prints_every_reason_and_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    import nmlbench.leaderboard.catalog as catalog

    monkeypatch.setattr(catalog, "NmlbenchCatalog", lambda data_root=None: FakeCatalog())
    sub = make_submission(tmp_path / "s")
    (sub / "evil.pkl").write_bytes(b"x")
    (sub / "submission.json").write_bytes(b'{"name": "\xff"}')
    assert main(["leaderboard", "submit", str(sub), "--leaderboard-dir", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err
    assert "rejected (2 reason(s))" in err and "evil.pkl" in err and "not UTF-8" in err
    assert not (tmp_path / "lb" / "submissions").exists() or not any(
        (tmp_path / "lb" / "submissions").iterdir()
    )
    (sub / "evil.pkl").unlink()
    (sub / "submission.json").write_text(
        '{"format": "nmlbench-submission", "schema_version": 1, "name": "ok", "author": "me"}'
    )
    assert main(["leaderboard", "submit", str(sub), "--leaderboard-dir", str(tmp_path / "lb")]) == 0
    assert "accepted as 'ok'" in capsys.readouterr().out
    assert (
        main(
            [
                "leaderboard",
                "build",
                "--leaderboard-dir",
                str(tmp_path / "lb"),
                "--no-plots",
                "--set",
                "metric=macro_f1",
            ]
        )
        == 0
    )
    assert "Macro-F1" in (tmp_path / "lb" / "LEADERBOARD.md").read_text()
    assert (
        main(["leaderboard", "build", "--leaderboard-dir", str(tmp_path / "lb"), "--set", "metric=ece"]) == 2
    )


def test_missing_path_is_a_user_error(tmp_path: Path) -> None:
    assert (
        main(["leaderboard", "submit", str(tmp_path / "nope.tar.gz"), "--leaderboard-dir", str(tmp_path)])
        == 2
    )
