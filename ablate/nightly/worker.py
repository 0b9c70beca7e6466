"""A benchmark worker: one commit's asv benchmarks, driven one call at a time over a pipe.

``ablate nightly --continuous`` starts one worker per commit, each with that
commit's checkout first on ``sys.path``, and times their benchmarks in interleaved
rounds (:mod:`ablate.nightly.continuous`). The worker is run as a script by path
and imports nothing of ``ablate`` itself: the benchmarks it discovers (with asv's
own discovery, ``asv_runner``) import the commit's ``ablate``, as asv would.

Protocol: one JSON object per line on stdin, one answer per line on the original
stdout (the benchmarks' own prints go to stderr). Operations:

* ``list``: every benchmark: name, type (``time``, ``peakmemory``, ``track``), params, version.
* ``setup {name, index}``: set up one parameter combination (``setup_cache`` once per
  cache key); answers ``skip`` when the benchmark raises ``NotImplementedError``.
* ``time {number}``: seconds of ``number`` calls of the set-up benchmark.
* ``peakmem``: peak resident bytes of the process during one call (Linux ``VmHWM``,
  reset through ``/proc/self/clear_refs`` before the call).
* ``track``: the value one call returns.
* ``teardown``, ``quit``.

Errors answer ``{"error": "..."}``; the worker goes on.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from typing import Any


def _peak_rss_bytes(step: Any) -> int:
    """Peak RSS during ``step()``: reset the high-water mark, call, read ``VmHWM``."""
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    step()
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM in /proc/self/status")


class Worker:
    """The benchmarks of one checkout and the one currently set up."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.benchmarks_dir = os.path.join(root, "benchmarks")
        self.caches: dict[str, Any] = {}
        self.current: Any = None

    def list(self) -> dict[str, Any]:
        from asv_runner.discovery import disc_benchmarks

        found = []
        for bench in disc_benchmarks(self.benchmarks_dir):
            found.append({"name": bench.name, "type": bench.type, "params": bench.params, "version": bench.version,
                          "unit": bench.unit})
        return {"benchmarks": found}

    def setup(self, name: str, index: int | None) -> dict[str, Any]:
        from asv_runner.discovery import get_benchmark_from_name

        self.teardown()
        bench = get_benchmark_from_name(self.benchmarks_dir, name if index is None else f"{name}-{index}")
        cache = None
        if bench.setup_cache_key is not None:
            if bench.setup_cache_key not in self.caches:
                self.caches[bench.setup_cache_key] = bench.do_setup_cache()
            cache = self.caches[bench.setup_cache_key]
        if hasattr(bench, "set_cache"):
            bench.set_cache(cache)
        elif cache is not None:  # older asv_runner
            bench.insert_param(cache)
        if bench.do_setup():
            return {"skip": True}
        self.current = bench
        return {"skip": False}

    def _call(self) -> Any:
        bench = self.current
        if bench is None:
            raise RuntimeError("no benchmark is set up")
        args = bench._build_params() if hasattr(bench, "_build_params") else tuple(bench._current_params)
        return bench.func(*args)

    def time(self, number: int) -> dict[str, Any]:
        start = time.perf_counter()
        for _ in range(int(number)):
            self._call()
        return {"seconds": time.perf_counter() - start}

    def peakmem(self) -> dict[str, Any]:
        return {"bytes": _peak_rss_bytes(self._call)}

    def track(self) -> dict[str, Any]:
        return {"value": float(self._call())}

    def teardown(self) -> dict[str, Any]:
        if self.current is not None:
            try:
                self.current.do_teardown()
            finally:
                self.current = None
                gc.collect()
        return {}


def serve(root: str, requests: Any, answers: Any) -> None:
    """Answer requests until ``quit`` or end of input."""
    worker = Worker(root)
    for line in requests:
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            break
        try:
            answer = getattr(worker, op)(**request)
        except Exception as error:  # noqa: BLE001 - reported to the driver, the worker goes on
            answer = {"error": f"{type(error).__name__}: {error}", "trace": traceback.format_exc(limit=-4)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def main(argv: list[str]) -> None:
    root = os.path.abspath(argv[0])
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [root] + [p for p in sys.path if os.path.abspath(p or ".") != here]  # the commit's code first
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the benchmarks' prints go to stderr, never into the protocol
    sys.stdout = sys.stderr
    serve(root, sys.stdin, answers)


if __name__ == "__main__":
    main(sys.argv[1:])
