"""CI runs the README's test command verbatim, and stops when it fails.

`set -e` does not stop a script on a failure inside an `a && b && c` list unless it is the last command,
so a failed `pip install` once ran on into the SLURM stage and failed there with an unrelated import
error. The guard after the command is what makes an install failure the reported failure.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    after = readme.split("Run the tests:", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", after, re.S).group(1).strip()


def test_ci_runs_the_readme_test_command_and_stops_on_its_failure():
    command = _readme_test_command()
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci
    after = ci.split(command, 1)[1].lstrip(" \\\n")
    assert after.startswith("||") and "exit 1" in after.split("\n")[0]
