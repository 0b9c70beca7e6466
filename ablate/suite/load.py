"""Reading a suite file: TOML, ``extends``, ``--set`` overrides and validation.

All user mistakes surface as :class:`SuiteError`, whose message names the file,
the key path and what was expected (with a "did you mean" for misspellings);
the CLI prints it without a traceback.
"""

from __future__ import annotations

import copy
import importlib.resources
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ablate.core.errors import SuiteError, UserError
from ablate.core.registry import did_you_mean
from ablate.suite.schema import AXIS_ALIASES, SECTIONS, SuiteFile, known_paths


def suites_dir() -> Path:
    """The built-in suites (and ``claims/``): the package resource ``ablate.suites``.

    The repository's top-level ``suites/`` is their source; the build maps it to
    ``ablate.suites`` (setup.py), so a wheel carries a copy and an editable install
    points at the checkout. Imported straight from a checkout (``PYTHONPATH``,
    nothing installed) there is no such package and the checkout's folder is used.
    """
    try:
        resources = importlib.resources.files("ablate.suites")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "suites"
    if not isinstance(resources, Path):  # e.g. a zipped install: the suites would need extracting first
        raise UserError(f"ablate's built-in suites are not a folder ({resources!r}); install ablate from its wheel with pip")
    return resources


#: Folders (separated by ``os.pathsep``) searched for a suite name before the built-in suites.
SUITES_VARIABLE = "ABLATE_SUITES"


def suite_folders() -> list[Path]:
    """Where a suite name is looked up, in order: the folders of ``$ABLATE_SUITES``, then the built-in suites."""
    extra = [Path(p) for p in os.environ.get(SUITES_VARIABLE, "").split(os.pathsep) if p]
    return [*extra, suites_dir()]


def resolve_suite_path(name_or_path: str | Path) -> Path:
    """A path as given, or a suite name (``quickstart`` -> ``suites/quickstart.toml``) from :func:`suite_folders`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in suite_folders():
        for candidate in (folder / f"{name_or_path}.toml", folder / str(name_or_path)):
            if candidate.is_file():
                return candidate
    known = sorted({p.stem for folder in suite_folders() if folder.is_dir() for p in folder.glob("*.toml")})
    hint = did_you_mean(path.stem, known, sep=", ")
    raise SuiteError(f"{name_or_path}: no such suite file.{hint} Built-in suites: {', '.join(known) or 'none'}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise SuiteError(f"{path}: cannot read: {error.strerror}") from None


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: tables merge recursively, everything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ("task",):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_with_extends(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The raw suite dict with every ``extends`` parent merged underneath it."""
    path = path.resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise SuiteError(f"{path}: 'extends' forms a cycle: {chain}")
    raw = _read_toml(path)
    parent = raw.get("extends")
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise SuiteError(f"{path}: extends: expected a file name (string), got {parent!r}")
    parent_path = (path.parent / parent) if not Path(parent).is_absolute() else Path(parent)
    if not parent_path.is_file():
        raise SuiteError(f"{path}: extends: no such file {parent_path}")
    merged = deep_merge(read_with_extends(parent_path, (*_seen, path)), raw)
    if "name" not in raw:
        merged.pop("name", None)  # a child suite is named after its own file, not its parent's
    merged.pop("extends", None)
    return merged


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.steps=200"`` -> ``("train.steps", 200)``; values are TOML, else strings."""
    if "=" not in text:
        raise SuiteError(f"--set {text!r}: expected KEY=VALUE, e.g. --set train.steps=200")
    key, _, raw_value = text.partition("=")
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw_value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw_value.strip()
    return key, value


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``config["a"]["b"] = value`` for ``"a.b"``, creating tables on the way."""
    keys = dotted.split(".")
    node = config
    for key in keys[:-1]:
        child = node.get(key)
        if isinstance(child, str) and key == "task":
            child = {"name": child}
        if not isinstance(child, dict):
            child = {}
        node[key] = child
        node = child
    node[keys[-1]] = value


def canonical_path(key: str, where: str) -> str:
    """Expand an axis alias (``encoding`` -> ``model.encoding``) and check the path exists."""
    path = AXIS_ALIASES.get(key, key)
    head, _, rest = path.partition(".")
    if head in ("task", "seed") and (not rest or head == "task"):
        return path
    if head in SECTIONS and rest in SECTIONS[head].model_fields:
        return path
    hint = did_you_mean(key, known_paths())
    raise SuiteError(f"{where}: unknown key {key!r}.{hint}")


def format_validation_error(source: str, error: ValidationError, schema: type[BaseModel]) -> str:
    """Turn pydantic's error list into lines ``file: key.path: what was expected``."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key." + _suggest_field(schema, item["loc"])
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{source}: {loc}: {message}")
    return "\n".join(lines)


def _suggest_field(schema: type[BaseModel], loc: tuple[Any, ...]) -> str:
    model: Any = schema
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        annotation = getattr(field, "annotation", None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        if model is None:
            for candidate in getattr(getattr(field, "annotation", None), "__args__", ()):  # Optional[Section]
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    model = candidate
            if model is None:
                return ""
    expected = ", ".join(model.model_fields)
    hint = did_you_mean(loc[-1], model.model_fields)
    return f"{hint} Expected one of: {expected}."


def load_suite(path_or_name: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[SuiteFile, Path]:
    """Read, merge, override and validate a suite; returns the schema object and its path."""
    path = resolve_suite_path(path_or_name)
    raw = read_with_extends(path)
    if "claim" in raw and "expect" in raw:
        raise SuiteError(f"{path} is a claim file ([claim], [suite], [[expect]]), not a suite: "
                         f"run it with 'ablate reproduce {path}'")
    if not set(raw) - {"name", "description"}:
        raise SuiteError(f"{path}: the suite is empty (it says nothing to run); give at least a task and a [grid], "
                         f"e.g. task = {{ name = \"parity\" }} and [grid] encoding = [\"rope\", \"alibi\"] "
                         f"(see 'ablate plan quickstart')")
    raw.setdefault("name", path.stem)
    return suite_from_dict(raw, str(path), overrides), path


def suite_from_dict(raw: dict[str, Any], source: str, overrides: list[str] | tuple[str, ...] = ()) -> SuiteFile:
    """Validate an already-read suite dict (``source`` names it in errors) after ``--set`` overrides."""
    raw = copy.deepcopy(raw)
    for text in overrides:
        key, value = parse_override(text)
        head = key.split(".")[0]
        if head in ("grid", "report", "measure", "include", "exclude", "name", "description", "seeds", "variants"):
            set_path(raw, key, value)
        else:
            set_path(raw, canonical_path(key, f"--set {key}"), value)
    try:
        return SuiteFile.model_validate(raw)
    except ValidationError as error:
        message = format_validation_error(source, error, SuiteFile)
        raise SuiteError(_blame_overrides(message, overrides)) from None


def _blame_overrides(message: str, overrides: list[str] | tuple[str, ...]) -> str:
    """Say which ``--set`` put a bad value in place (the file is innocent then), with how values are written."""
    lines = message.splitlines()
    for index, line in enumerate(lines):
        for text in overrides:
            key = text.partition("=")[0].strip()
            if any(re.search(f": {re.escape(k)}[.:]", line) for k in (key, _canonical_alias(key))):
                lines[index] = (f"{line} (from --set {text}; values are TOML: numbers bare, strings quoted, "
                                f"lists in [], e.g. --set train.steps=200 --set 'grid.encoding=[\"rope\"]')")
                break
    return "\n".join(lines)


def _canonical_alias(key: str) -> str:
    """An axis alias expanded (``encoding`` -> ``model.encoding``), other keys unchanged."""
    return AXIS_ALIASES.get(key, key)
