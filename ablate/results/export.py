"""``ablate export``: results folders as plain data files (CSV, Parquet, JSON).

The first table is the tidy frame of :func:`ablate.results.store.load_results` (one row per
run x metric x evaluation length, with the resolved config, the environment and
the results folder as columns); several folders go into one table, each row
tagged with its folder (``results_dir``). A second table holds learning curves when the results have them (the
store's ``curves`` table), written beside the first as ``<name>.curves.<ext>``.
:func:`read_export` reads a file back into the frame ``load_results`` gives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ablate.core.errors import UserError
from ablate.results.store import ResultsPaths, load_curves, load_results


def _write_csv(frame: pd.DataFrame, target: Path) -> None:
    frame.to_csv(target, index=False)


def _write_json(frame: pd.DataFrame, target: Path) -> None:
    # orient="table" carries a schema, so integers, booleans and strings read back as they were.
    frame.to_json(target, orient="table", index=False, indent=1)


def _write_parquet(frame: pd.DataFrame, target: Path) -> None:
    _require_parquet_engine()
    # Parquet wants one type per column: mixed config columns (None beside a number) become strings.
    frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}).to_parquet(target, index=False)


def _read_csv(source: Path) -> pd.DataFrame:
    return pd.read_csv(source)


def _read_json(source: Path) -> pd.DataFrame:
    return pd.read_json(source, orient="table")


def _read_parquet(source: Path) -> pd.DataFrame:
    _require_parquet_engine()
    return pd.read_parquet(source)


def _require_parquet_engine() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("--format parquet needs pyarrow: pip install 'ablate[parquet]' (or use --format csv / json)") from None


#: format name -> (file extension, writer, reader)
FORMATS: dict[str, tuple[str, Callable[[pd.DataFrame, Path], None], Callable[[Path], pd.DataFrame]]] = {
    "csv": (".csv", _write_csv, _read_csv),
    "json": (".json", _write_json, _read_json),
    "parquet": (".parquet", _write_parquet, _read_parquet),
}


def stored_curves(results_dir: ResultsPaths) -> pd.DataFrame | None:
    """The learning curves stored with the results (:func:`ablate.results.store.load_curves`), or ``None``
    when there are none."""
    curves = load_curves(results_dir)
    return curves if not curves.empty else None


def require_results(results_dir: str | Path) -> Path:
    """``results_dir`` if it holds ``results.sqlite``; else a :class:`UserError` saying what to point at."""
    path = Path(results_dir)
    if not (path / "results.sqlite").is_file():
        hint = f"; results folders here: {', '.join(sorted(str(p.parent) for p in path.glob('*/results.sqlite')))}" \
            if path.is_dir() and any(path.glob("*/results.sqlite")) else "; run 'ablate run SUITE' first, then point at results/<suite>"
        raise UserError(f"{results_dir}: no results.sqlite here{hint}")
    return path


def _check_format(fmt: str) -> tuple[str, Callable[[pd.DataFrame, Path], None], Callable[[Path], pd.DataFrame]]:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def export_results(results_dir: ResultsPaths, fmt: str = "csv", out: str | Path | None = None) -> dict[str, Path]:
    """Write the tidy results (and curves, if any) of one or several results folders as ``fmt``.

    Args:
        results_dir: a results folder (``results/<suite>``), or a list of them (one table,
            each row tagged with its folder in ``results_dir``).
        fmt: ``csv``, ``json`` or ``parquet``.
        out: the file for the results table; default ``<results_dir>/export/results.<ext>``
            for one folder (required for several). ``"-"`` writes CSV or JSON to stdout (without curves).

    Returns:
        ``{"results": path, "curves": path}`` (``curves`` only when there are curves).
    """
    folders = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    sources = [require_results(folder) for folder in folders]
    extension, write, _ = _check_format(fmt)
    if out is None and len(sources) > 1:
        raise UserError(f"{len(sources)} results folders make one table: give its file with -o, "
                        f"e.g. -o all{extension}")
    frame = load_results(sources)
    if str(out) == "-":
        if fmt == "parquet":
            raise UserError("--format parquet cannot go to stdout; give -o FILE.parquet")
        sys.stdout.write(frame.to_csv(index=False) if fmt == "csv" else frame.to_json(orient="table", index=False))
        return {}
    target = Path(out) if out is not None else sources[0] / "export" / f"results{extension}"
    target.parent.mkdir(parents=True, exist_ok=True)
    write(frame, target)
    written = {"results": target}
    curves = stored_curves(sources)
    if curves is not None:
        curves_target = target.with_name(f"{target.stem}.curves{target.suffix or extension}")
        write(curves, curves_target)
        written["curves"] = curves_target
    return written


def read_export(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """Read an exported table back (the format from ``fmt`` or the file's extension)."""
    path = Path(path)
    fmt = fmt or next((name for name, (ext, _, _) in FORMATS.items() if path.suffix == ext), "")
    _, _, read = _check_format(fmt)
    return read(path)
