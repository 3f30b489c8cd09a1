"""`python -m nmlbench ...` is the `nmlbench` command."""
from nmlbench.cli import entry

entry()
