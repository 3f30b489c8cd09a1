"""Submitted text made safe to show: one sanitizer, and the escapes of each output format.

`clean_text` is applied to every free-text field when a submission is accepted and again to every
string the tables, page and figures show, so text that reached the board some other way (an older
submission, a results folder) is shown the same way. It removes what would make displayed text
differ from what a reader sees: control characters, bidirectional overrides and isolates
(U+202A–U+202E, U+2066–U+2069), the marks U+200E/U+200F and every other invisible format
character, lone surrogates (which cannot be written as UTF-8 at all) and the blank "filler"
letters; it turns line breaks and tabs into spaces. Each format then escapes what is live in it:
`md_cell` (markdown: no link, image, autolink, emphasis or HTML), `csv_cell` (spreadsheet formulas).
"""

from __future__ import annotations

import re
import unicodedata

# Letters (category Lo) that render as nothing: a name made of them would look empty.
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_SPACE = re.compile(r"\s+")


def visible(ch: str) -> bool:
    """False for the characters `clean_text` removes (whitespace aside)."""
    # Cc: C0/C1 controls; Cf: format characters (bidi controls, zero-width, soft hyphen, tags);
    # Cs: surrogates, which only an escaped JSON string ("\ud800") can produce.
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs") and ch not in _FILLERS


def clean_text(text: object) -> str:
    """NFC text on one line, without control, format or bidi characters; runs of spaces collapsed."""
    s = str(text)
    s = "".join(" " if ch.isspace() else ch for ch in s if ch.isspace() or visible(ch))
    return _SPACE.sub(" ", unicodedata.normalize("NFC", s)).strip()


# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that can start
# a construct inside a table cell (never at a line start): emphasis and strikethrough, code,
# links and images (with `[` `]` escaped, `(` `!` can no longer form one), autolinks (`:` of a
# scheme, `@` of an e-mail address, the `.` of `www.`), math (`$`, which GitHub renders), the
# backslash itself, and `_` except inside a word (`symmetric_label` cannot emphasise anything).
_MD_ESCAPE = re.compile(r"[\\`*\[\]~:@$]|(?<=[wW]{3})\.|_(?!(?<=[^\W_]_)[^\W_])")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "|": "&#124;"}


def md_cell(text: object) -> str:
    """Clean text as inert markdown: shown literally, nothing in it links, embeds or formats."""
    s = _MD_ESCAPE.sub(lambda m: "\\" + m.group(0), clean_text(text))
    return "".join(_MD_ENTITIES.get(ch, ch) for ch in s)


# OWASP "CSV injection": a cell a spreadsheet would read as a formula starts with one of these,
# possibly after spaces; a leading single quote makes it text in Excel, LibreOffice and Sheets.
_FORMULA_START = re.compile(r"^\s*[=+\-@\t\r]")


def csv_cell(text: object) -> str:
    """Clean text that no spreadsheet evaluates: a formula-like start gets a leading `'`."""
    s = clean_text(text)
    return "'" + s if _FORMULA_START.match(s) else s
