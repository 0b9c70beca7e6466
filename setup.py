"""Packages of the wheel: ``ablate*`` plus the built-in suites, shipped as ``ablate.suites``.

The suites stay at the top-level ``suites/`` of the repository (their source);
the mapping below puts them inside the package, where ``importlib.resources``
finds them in a wheel and an editable install alike. Everything else is in
pyproject.toml.
"""

from setuptools import find_packages, setup

SUITE_PACKAGES = {"ablate.suites": "suites"}

setup(packages=find_packages(include=["ablate", "ablate.*"]) + list(SUITE_PACKAGES), package_dir=SUITE_PACKAGES)
