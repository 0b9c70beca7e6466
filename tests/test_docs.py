"""Every command in README.md and docs/*.md runs, so none goes stale.

Fenced blocks tagged ``bash`` run in ``bash -e``, blocks tagged ``python`` in
this interpreter; a block right after a line ``<!-- not run: <reason> -->`` is
skipped (too slow, needs a GPU or a cluster). Each page runs top to bottom in a
folder of its own, with ``$ABLATE_SUITES`` pointing ``quickstart`` at a tiny
copy, so ``ablate run quickstart`` takes seconds; plain ``ablate`` lines run
in this process (``ablate.cli.main``), other shell in a subprocess with this
checkout's ``ablate`` on the PATH. The links between pages must resolve, the
README stays short, and the generated suites reference is up to date.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ablate.cli import main
from ablate.suite.reference import updated
from tiny_suite import tiny_suite

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = ("bash", "python")
NOT_RUN = re.compile(r"^<!-- not run: (?P<reason>\S.*?) -->$")
README_MAX_LINES = 150
#: The tiny quick start's grid: two encodings the pages name (``--baseline encoding=rope``).
TINY_ENCODINGS = '"sinusoidal", "rope"'


@dataclass
class Block:
    """One fenced block of a page."""

    page: Path
    line: int
    language: str
    text: str
    skip: str | None  # the reason it is not run, or None

    def __str__(self) -> str:
        return f"{self.page.name}:{self.line} ({self.language or 'untagged'})"


def blocks_of(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` with their language and whether a ``not run`` comment precedes them."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        reason = NOT_RUN.match(previous.strip())
        found.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                           reason.group("reason") if reason else None))
        i = end + 1
    return found


def _ablate_lines(text: str) -> list[list[str]] | None:
    """A block made of plain ``ablate ...`` commands as argv lists (comments dropped), else ``None``."""
    commands = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("ablate ") or re.search(r"[|&;<>$`]", line):
            return None
        commands.append(shlex.split(line)[1:])
    return commands


def run_block(block: Block, work: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one block in ``work``: ``ablate`` lines and Python in this process (no start-up per command), the rest
    in ``bash -e``."""
    commands = _ablate_lines(block.text) if block.language == "bash" else None
    monkeypatch.chdir(work)
    for key in ("ABLATE_SUITES", "MPLBACKEND"):
        monkeypatch.setenv(key, env[key])
    if commands is not None:
        for argv in commands:
            assert _exit_code(argv) == 0, f"{block}: ablate {shlex.join(argv)} failed"
    elif block.language == "python":
        exec(compile(block.text, str(block), "exec"), {"__name__": "__docs__"})  # noqa: S102 - the page's own code
    else:
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{block} failed:\n{block.text}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


def _exit_code(argv: list[str]) -> int:
    """``ablate argv`` in this process: its return value, or the code of the ``SystemExit`` of ``--help``."""
    try:
        return main(argv)
    except SystemExit as done:
        return int(done.code or 0)


def _sandbox(tmp_path: Path) -> dict[str, str]:
    """The environment the commands run in: the tiny quick start first, ``ablate`` of this checkout on the PATH."""
    suites = tmp_path / "tiny-suites"
    suites.mkdir()
    (suites / "quickstart.toml").write_text(tiny_suite("quickstart", steps=3, encodings=TINY_ENCODINGS))
    return dict(os.environ, ABLATE_SUITES=str(suites), MPLBACKEND="Agg", NO_COLOR="1",
                PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_of_the_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env = _sandbox(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "scripts").symlink_to(ROOT / "scripts")  # the pages' commands run as from a checkout
    for block in blocks_of(page):
        if block.language in RUNNABLE and not block.skip:
            run_block(block, work, env, monkeypatch)


def test_every_block_is_tagged_and_every_skip_says_why():
    untagged = [str(b) for page in PAGES for b in blocks_of(page) if not b.language]
    assert untagged == [], "tag each block (bash, python, toml, ...) so it is clear whether it runs"
    skipped = [b for page in PAGES for b in blocks_of(page) if b.skip]
    assert skipped and all(len(b.skip.split()) >= 3 for b in skipped)  # a reason, not a shrug
    for page in PAGES:  # a comment that skips nothing is a mistake
        comments = len(re.findall(r"^<!-- not run:", page.read_text(encoding="utf-8"), flags=re.MULTILINE))
        assert comments == sum(1 for b in blocks_of(page) if b.skip), page


def test_a_not_run_comment_skips_only_the_block_after_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- not run: needs a GPU to run -->\n```bash\nexit 1\n```\n\n```bash\ntrue\n```\n"
                    "```toml\nx = 1\n```\n")
    assert [(b.language, b.skip, b.text) for b in blocks_of(page)] == [
        ("bash", "needs a GPU to run", "exit 1\n"), ("bash", None, "true\n"), ("toml", None, "x = 1\n")]


def test_links_between_pages_resolve():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"\w+://", target):
                continue
            path = (page.parent / target).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_readme_is_short_and_keeps_the_quick_start():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert 'python3 -m pip install "tox>=4.11" && tox -e run' in text
    assert re.search(r"^tox\s+#", text, flags=re.MULTILINE)


def test_the_suites_reference_is_up_to_date():
    page = ROOT / "docs" / "suites.md"
    text = page.read_text(encoding="utf-8")
    assert updated(text) == text, "regenerate it: python -m ablate.suite.reference docs/suites.md"
