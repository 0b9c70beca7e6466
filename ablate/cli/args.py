"""Checks of command-line values, so a mistake is one line with a suggestion, never a traceback."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ablate.core.errors import UserError

if TYPE_CHECKING:
    import pandas as pd


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (``--workers``, ``--threads``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value} (e.g. 1, or the number of cores)")
    return value


def _suggest(wanted: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(wanted, choices, n=1, cutoff=0.5) or [c for c in choices if c.startswith(wanted)][:1]
    return f" Did you mean {close[0]!r}?" if close else ""


def check_report_options(frame: pd.DataFrame, main_metric: str | None, baseline: Mapping[str, str] | None) -> None:
    """Raise :class:`UserError` if ``--main-metric`` or ``--baseline AXIS=VALUE`` does not fit the results."""
    import pandas as pd

    from ablate.analysis.stats.frame import column_of, grid_axes

    if main_metric is not None:
        metrics = sorted(str(m) for m in pd.unique(frame["metric"].dropna()))
        if main_metric not in metrics:
            raise UserError(f"--main-metric {main_metric!r} is not in these results.{_suggest(main_metric, metrics)} "
                            f"Metrics: {', '.join(metrics)}")
    axes = grid_axes(frame)
    for axis, value in (baseline or {}).items():
        column = column_of(axis)
        if column not in axes:
            raise UserError(f"--baseline {axis}={value}: {axis!r} is not a grid axis of these results.{_suggest(column, axes)} "
                            f"Axes: {', '.join(axes) or 'none (nothing varies)'}")
        values = [str(v) for v in pd.unique(frame[column].dropna())]
        if str(value) not in values:
            raise UserError(f"--baseline {axis}={value}: {value!r} is not a value of {column}.{_suggest(str(value), values)} "
                            f"Values: {', '.join(values)}")


#: Flags that only the Ray executor reads, and their option names.
RAY_FLAGS = {"--address": "address", "--num-cpus": "num_cpus", "--num-gpus": "num_gpus"}


@dataclass(frozen=True)
class Execution:
    """How ``ablate run`` / ``ablate reproduce`` execute a plan: :func:`ablate.run.runner.run_plan`'s keywords."""

    executor: str
    workers: int
    executor_options: dict[str, Any] = field(default_factory=dict)

    def keywords(self) -> dict[str, Any]:
        return {"executor": self.executor, "workers": self.workers, "executor_options": self.executor_options}


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor``, ``--workers``, ``--threads`` and the Ray flags, shared by ``run`` and ``reproduce``."""
    group = parser.add_argument_group("execution")
    group.add_argument("--executor", default=None, choices=["local", "process", "ray"],
                       help="where runs execute (default: process when --workers > 1, else local)")
    group.add_argument("--workers", type=positive_int, default=None, metavar="N",
                       help="runs at once in a process pool; > 1 implies --executor process (default: 1)")
    group.add_argument("--threads", type=positive_int, default=None, metavar="N",
                       help="torch threads per run (default: the cores divided among the workers)")
    group.add_argument("--address", default=None, metavar="ADDRESS",
                       help="Ray only: cluster address (auto, HOST:PORT, ray://HOST:10001)")
    group.add_argument("--num-cpus", type=float, default=None, metavar="N", help="Ray only: CPUs per run (default: 1)")
    group.add_argument("--num-gpus", type=float, default=None, metavar="N", help="Ray only: GPUs per run (default: 0)")


def execution(args: argparse.Namespace) -> Execution:
    """Resolve the execution flags, or raise :class:`UserError` naming a flag that would do nothing."""
    workers = args.workers
    executor = args.executor or ("process" if (workers or 1) > 1 else "local")
    given_ray = [flag for flag, name in RAY_FLAGS.items() if getattr(args, name) is not None]
    if given_ray and executor != "ray":
        raise UserError(f"{given_ray[0]} is a Ray option: add --executor ray (it would do nothing with {executor})")
    if executor == "local" and workers is not None and workers > 1:
        raise UserError(f"--workers {workers} needs a process pool: use --executor process, or leave --executor out")
    if executor == "ray" and workers is not None:
        raise UserError("--workers does not apply to --executor ray: Ray runs as many runs as the cluster's free "
                        "resources allow; size each run with --num-cpus / --num-gpus")
    options: dict[str, Any] = {name: getattr(args, name) for name in RAY_FLAGS.values()
                               if getattr(args, name) is not None}
    if args.threads is not None:
        options["threads"] = args.threads
    return Execution(executor, workers or 1, options)


class RenamedFlag(argparse.Action):
    """An old name of a flag: it still acts, as ``new`` does, and says once on stderr that it was renamed."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stderr.write(f"warning: {option_string} is now {self.new}; the old name will be removed\n")
        setattr(namespace, self.dest, values)


def add_out(parser: argparse.ArgumentParser, default: str | None, help_text: str, *, dest: str = "out",
            old: str | None = None) -> None:
    """``-o/--out``, the one name of where a command writes; ``old``, the flag's earlier name, still acts."""
    parser.add_argument("-o", "--out", dest=dest, default=default, metavar="PATH", help=help_text)
    if old:
        parser.add_argument(old, dest=dest, action=RenamedFlag, new="--out")
