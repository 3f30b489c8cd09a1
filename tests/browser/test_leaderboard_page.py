"""The built page in a real headless chromium: sorting, filtering, and injected names stay inert.

Needs Debian's chromium (`apt-get install chromium`) and the `playwright` Python package; no
browser is downloaded. Skipped with the reason when either is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lb_fakes import FakeCatalog, Model, make_submission, study_models

from nmlbench.leaderboard.build import build
from nmlbench.leaderboard.submit import submit

CHROMIUM = Path(os.environ.get("NMLBENCH_CHROMIUM", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EVIL_NAME = '<img src=x onerror="window.__pwned=1">'
EVIL_AUTHOR = "<script>window.__pwned=2</script>"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not found; apt-get install chromium"),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright (no browser download needed)"
)


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("board")
    lb = tmp / "lb"
    subs = [
        make_submission(
            tmp / "a", name="Alpha", models=study_models((0.0, 0.3), (0,)), methods=("lp", "nmtune")
        ),
        make_submission(
            tmp / "b", name=EVIL_NAME, author=EVIL_AUTHOR, models=(Model("evilnet", 0.0),), methods=("lp",)
        ),
    ]
    for sub in subs:
        assert submit(sub, lb, FakeCatalog()).accepted
    build(lb)
    return (lb / "index.html").as_uri()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield b
        b.close()


def _column(page, index: int, visible_only: bool = True) -> list[str]:
    sel = "#board tbody tr" + (":not([hidden])" if visible_only else "")
    return page.eval_on_selector_all(sel, f"rows => rows.map(r => r.cells[{index}].textContent)")


def test_sort_filter_and_injection(browser, page_url: str, tmp_path: Path) -> None:
    page = browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(page_url)
    header = page.eval_on_selector_all("#board thead th", "ths => ths.map(t => t.textContent)")
    col = header.index("OOD avg")

    # Sort: first click = descending for numbers, second = ascending; rows actually move.
    page.click(f"#board thead th:nth-child({col + 1}) button")
    values = [float(v.split(" ")[0]) for v in _column(page, col)]
    assert values == sorted(values, reverse=True) and len(values) == 5
    page.click(f"#board thead th:nth-child({col + 1}) button")
    values = [float(v.split(" ")[0]) for v in _column(page, col)]
    assert values == sorted(values)
    assert page.get_attribute(f"#board thead th:nth-child({col + 1})", "aria-sort") == "ascending"

    # Filter by method, then by model: only matching rows stay visible, order kept.
    page.select_option("#filter-method", "nmtune")
    assert set(_column(page, header.index("Method"))) == {"nmtune"} and len(_column(page, 0)) == 2
    page.select_option("#filter-model", "evilnet")
    assert _column(page, 0) == []
    assert page.text_content("#count") == "0 of 5 rows shown"
    page.select_option("#filter-method", "")
    assert _column(page, 0) == [EVIL_NAME]

    # The injected strings are shown as text and nothing ran.
    assert _column(page, 1) == [EVIL_AUTHOR]
    assert page.evaluate("window.__pwned === undefined")
    assert page.locator("#board img").count() == 0 and page.locator("#board script").count() == 0
    assert dialogs == []
    shot = Path(os.environ.get("NMLBENCH_SCREENSHOT_DIR", tmp_path)) / "leaderboard.png"
    page.select_option("#filter-model", "")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
