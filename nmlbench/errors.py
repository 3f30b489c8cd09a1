"""The one exception type the CLI turns into a single line and exit code 2.

Raise it for anything the user can fix (bad path, bad rate, unknown name); the message must name
the problem and the fix. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""
