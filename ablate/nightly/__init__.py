"""The nightly asv job: run the benchmarks, compare with the previous commit, publish the dashboard.

``ablate nightly`` and ``python -m ablate.nightly`` are one command with one set of
flags (:func:`add_arguments`); ``docs/nightly.md`` says when to use which mode:

* default (a dedicated machine, self-hosted runner): ``asv run NEW`` in asv's own
  virtualenvs (``--existing``: the working tree in this Python as ``HEAD``), then
  compare with the previous results stored for this machine class
  (:mod:`~ablate.nightly.machine`), read from asv's result files
  (:mod:`~ablate.nightly.results`), and publish.
* ``--continuous`` (hosted runners, noisy): the previous benchmarked commit and the
  new one measured in this job, interleaved (:mod:`~ablate.nightly.continuous`);
  a regression must exceed both the factor and the noise measured in the job.
* ``--quick``: every benchmark once, nothing saved: a smoke test of the job.
* ``--check``: what CI (``tox``, after the tests) runs in a few minutes on 2 cores:
  ``asv check`` and a quick, unsaved run of a cheap selection of every benchmark.

The benchmarks live in ``benchmarks/`` and take their params and versions from
``suites/nightly.toml``. Exit status: 0 when everything ran and nothing regressed,
1 on a regression, 2 when a benchmark or an asv command failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ablate.nightly.jobs import Options, run_check, run_continuous, run_stored
from ablate.nightly.machine import MACHINE_VARIABLE
from ablate.nightly.results import DEFAULT_FACTOR, DEFAULT_MAX_DROP


def _above(bound: float, expected: str) -> Callable[[str], float]:
    """An argparse ``type``: a number greater than ``bound`` (``expected`` says what, in the error)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not value > bound:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value:g}")
        return value
    return parse


# Here, not in ablate.cli.args: importing any module of ablate.cli runs ablate/cli/__init__.py,
# which imports this package (a cycle when ablate.nightly is imported first).
def fraction(text: str) -> float:
    """An argparse ``type``: a number strictly between 0 and 1 (``--accuracy-drop 0.03`` = 3 points)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.03, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (0.03 = 3 points), got {value:g}")
    return value


_factor = _above(1.0, "a ratio above 1 (1.2 = 20% worse)")
_positive = _above(0.0, "a positive number")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Every flag of the nightly job, for ``ablate nightly`` and ``python -m ablate.nightly`` alike."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="CI: asv check and a quick, unsaved run of a cheap selection of every benchmark")
    mode.add_argument("--quick", action="store_true", help="run every benchmark once; nothing is saved or compared")
    mode.add_argument("--continuous", action="store_true",
                      help="hosted runners: measure the previous benchmarked commit and this one in this job, "
                           "interleaved, and compare them (no stored results needed)")
    parser.add_argument("--existing", action="store_true",
                        help="measure the working tree in this Python as HEAD, no rebuild (a GPU box)")
    parser.add_argument("--base", default=None, metavar="COMMIT",
                        help="--continuous: the old commit (default: the newest ancestor with stored results, else "
                             "HEAD^); HEAD gives an A/A run that must flag nothing")
    parser.add_argument("--threshold", type=_factor, default=DEFAULT_FACTOR, metavar="FACTOR",
                        help=f"regression factor of time and memory (default {DEFAULT_FACTOR}: 20%% worse)")
    parser.add_argument("--accuracy-drop", type=fraction, default=DEFAULT_MAX_DROP, metavar="FRACTION",
                        help=f"regression of accuracy, absolute (default {DEFAULT_MAX_DROP}: "
                             f"{100 * DEFAULT_MAX_DROP:g} points)")
    parser.add_argument("--alpha", type=fraction, default=0.05,
                        help="--continuous: chance of any false alarm when nothing changed (default 0.05)")
    parser.add_argument("--budget-s", type=_positive, default=2400.0, metavar="SECONDS",
                        help="--continuous: seconds of interleaved timing rounds in all (default 2400)")
    parser.add_argument("--precision", type=_positive, default=0.05,
                        help="--continuous: a benchmark's rounds stop once its ratio is known to 1 +- this "
                             "(default 0.05)")
    parser.add_argument("--sample-s", type=_positive, default=0.05, metavar="SECONDS",
                        help="--continuous: calls are batched so one timed sample lasts this long (default 0.05)")
    parser.add_argument("--bench", default=None, metavar="REGEX",
                        help="--continuous: only the benchmarks whose name matches (e.g. 'time_forward.*rope')")
    parser.add_argument("--machine", default=None,
                        help=f"asv machine name (default: ${MACHINE_VARIABLE}, else the machine's class: CPU model, "
                             "cores, memory, GPU, torch build)")
    parser.add_argument("--dry-run", action="store_true", help="print the asv commands without running them")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m ablate.nightly``."""
    parser = argparse.ArgumentParser(prog="python -m ablate.nightly", description=__doc__.splitlines()[0])
    return add_arguments(parser)


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    """Entry point of ``ablate nightly`` (a namespace) and ``python -m ablate.nightly`` (argv)."""
    if not isinstance(args, argparse.Namespace):
        args = build_parser().parse_args(args)
    opts = Options(**{name: getattr(args, name) for name in Options.__dataclass_fields__ if hasattr(args, name)})
    if opts.check:
        return run_check(opts)
    return run_continuous(opts) if opts.continuous else run_stored(opts)


__all__ = ["Options", "add_arguments", "build_parser", "main"]

if __name__ == "__main__":  # pragma: no cover - see __main__.py
    sys.exit(main(sys.argv[1:]))
