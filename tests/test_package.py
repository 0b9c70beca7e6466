"""The wheel is the product: it carries the built-in suites and claims, found by name from any folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import pytest

from ablate.claims import all_claims
from ablate.suite import load_plan, suites_dir

REPO = Path(__file__).resolve().parents[1]


def test_every_suite_file_is_package_data():
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ablate.suites"]
    files = [p.relative_to(REPO / "suites").as_posix() for p in (REPO / "suites").rglob("*.toml")]
    assert "quickstart.toml" in files and any(f.startswith("claims/") for f in files)
    assert [f for f in files if not any(fnmatch(f, g) and f.count("/") == g.count("/") for g in globs)] == []


def test_built_in_suites_and_claims_are_found_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert suites_dir() == REPO / "suites"
    assert load_plan("quickstart").path == REPO / "suites" / "quickstart.toml"
    assert {c.path.parent for c in all_claims()} == {REPO / "suites" / "claims"}


@pytest.mark.slow
def test_the_wheel_carries_the_suites(tmp_path):
    """Build the wheel (offline, this environment's setuptools) from a copy of the sources and look inside."""
    source = tmp_path / "src"  # pip builds in the source tree: keep build/ and *.egg-info out of the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".tox", ".asv", "results", "build", "*.egg-info",
                                                                 "__pycache__", ".pytest_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(source)], capture_output=True, text=True, cwd=tmp_path)
    if build.returncode != 0 and "No module named pip" in build.stderr:
        pytest.skip("pip is not installed in this environment")
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("ablate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"ablate/suites/{p.relative_to(REPO / 'suites').as_posix()}" for p in (REPO / "suites").rglob("*.toml")}
    assert expected <= names
    assert {"ablate/analysis/report/templates/report.html.j2", "ablate/analysis/report/templates/report.md.j2",
            "ablate/data/shakespeare.csv", "ablate/suites/__init__.py"} <= names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata
