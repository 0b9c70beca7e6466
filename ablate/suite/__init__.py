"""Declarative suites: schema, loading (``extends``, ``--set``) and expansion into runs."""

from ablate.suite.expand import Plan, RunSpec, expand, run_id
from ablate.suite.load import SuiteError, load_suite, resolve_suite_path, suites_dir
from ablate.suite.schema import SuiteFile


def load_plan(path_or_name: str, overrides: list[str] | tuple[str, ...] = ()) -> Plan:
    """Load, validate and expand a suite in one call; raises :class:`SuiteError`."""
    suite, path = load_suite(path_or_name, overrides)
    return expand(suite, path)


__all__ = ["Plan", "RunSpec", "SuiteError", "SuiteFile", "expand", "load_plan", "load_suite", "resolve_suite_path", "run_id", "suites_dir"]
