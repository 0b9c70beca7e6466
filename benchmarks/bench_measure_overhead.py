"""How trustworthy and how costly is one :func:`ablate.measure.measure_point` call?

(a) Agreement: the same configuration measured twice back to back; the ratio of
    the two tokens/s should be close to 1 (on a quiet machine, within a few %).
(b) Overhead: wall time of one call minus the timed work inside it (the sum of
    the timed blocks): model construction, warm-up, block-size estimation and,
    with memory, the spawned process that measures CPU peak memory.

A script, not an asv benchmark (no ``time_``/``peakmem_`` names here; asv only
imports it). Run it on a quiet machine, nothing else using the cores::

    python benchmarks/bench_measure_overhead.py                       # tiny, seconds
    python benchmarks/bench_measure_overhead.py --length 1024 --d-model 128 --layers 2 --memory
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["forward", "train_step"], default="forward")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=32)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--encoding", default="none")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--min-run-time", type=float, default=0.2)
    parser.add_argument("--pairs", type=int, default=2, help="back-to-back pairs for (a)")
    parser.add_argument("--memory", action="store_true", help="also time calls that measure peak memory")
    return parser.parse_args(argv)


def _call(config: dict, args: argparse.Namespace, *, memory: bool) -> tuple[Any, float]:
    from ablate.measure import measure_point

    started = time.perf_counter()
    result = measure_point(config, mode=args.mode, batch_size=args.batch_size, length=args.length, dtype=args.dtype,
                           device=args.device, threads=args.threads, memory=memory, min_run_time=args.min_run_time)
    wall = time.perf_counter() - started
    if result.status != "ok":
        raise SystemExit(f"measurement {result.status}: {result.reason}")
    return result, wall


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    config = {"vocab_size": 256, "num_classes": 8, "d_model": args.d_model, "num_heads": args.heads,
              "num_layers": args.layers, "encoding": args.encoding}
    _call(config, args, memory=False)  # process warm-up: imports, first-call initialisation

    print(f"(a) agreement, {args.mode} B={args.batch_size} L={args.length} {args.dtype} on {args.device}")
    print(f"{'pair':>4} {'tokens/s first':>15} {'tokens/s second':>16} {'ratio':>7} {'rel IQR 1st':>11} {'2nd':>6}")
    for pair in range(args.pairs):
        first, _ = _call(config, args, memory=False)
        second, _ = _call(config, args, memory=False)
        a, b = first.metrics["tokens_per_s"], second.metrics["tokens_per_s"]
        print(f"{pair:>4} {a:>15.1f} {b:>16.1f} {b / a:>7.3f} {first.facts['relative_iqr']:>11.3f} "
              f"{second.facts['relative_iqr']:>6.3f}")

    print("\n(b) overhead of one call beyond the timed work (with memory: the first call also starts the")
    print("    memory-measuring worker process, which every later point of a sweep reuses)")
    print(f"{'memory':>6} {'call':>5} {'wall s':>8} {'timed s':>8} {'overhead s':>10} {'overhead %':>10} {'blocks':>6} "
          f"{'calls/blk':>9} {'threads':>7}")
    for memory in (False, True) if args.memory else (False,):
        for call in ("first", "next") if memory else ("any",):
            result, wall = _call(config, args, memory=memory)
            timing = result.timing
            overhead = wall - timing.timed_s
            print(f"{memory!s:>6} {call:>5} {wall:>8.3f} {timing.timed_s:>8.3f} {overhead:>10.3f} "
                  f"{100 * overhead / wall:>10.1f} {timing.n:>6} {timing.number_per_run:>9} {timing.threads:>7}")


if __name__ == "__main__":
    main()
