"""Peak memory of one step, on CUDA and on the CPU.

What is counted (both devices): the memory the *step* adds on top of what existed
before it -- activations kept for backward, temporaries and kernel workspaces,
gradients and the optimizer state created by the first training step, the
outputs. Not counted: the weights, the input batch, the optimizer object before
its first step, imported libraries, the interpreter.

CUDA (:func:`cuda_peak`): in the measuring process, after the same throwaway
warm-up step (it creates cuBLAS workspaces and compiles kernels; they persist,
so they are baseline). ``gc`` + ``empty_cache``, then
``baseline = memory_allocated()`` (and ``memory_reserved()``), then
``reset_peak_memory_stats``, ``repeats`` steps, synchronize, and
``peak_memory_bytes = max_memory_allocated() - baseline`` (bytes of live tensors
at the worst moment) and ``peak_reserved_bytes = max_memory_reserved() -
baseline_reserved`` (what the caching allocator held from the driver, which is
what decides an out-of-memory).

CPU (:func:`cpu_peak`): ``tracemalloc`` does not see torch's allocator, so the
step runs in a fresh *spawned* process (nothing inherited from the measuring
process) that imports, runs one warm-up step on a throwaway instance of the
same model and batch shape (it pages in library code and creates per-shape
state such as JIT-compiled kernels, 7-25 MB that would otherwise be counted),
builds the measured model and inputs, returns freed heap to the
OS (``malloc_trim``), records its resident set size (``VmRSS``) as baseline,
resets the high-water mark (writing ``5`` to ``/proc/self/clear_refs`` resets
``VmHWM``), runs ``repeats`` steps and reports ``VmHWM - baseline`` minus any
growth of file-backed resident pages (``RssFile``: library code, not data). Where
``clear_refs`` is not writable, a thread samples the RSS every millisecond
instead (it can miss a peak shorter than that). RSS counts pages actually
touched: an allocated but never written buffer does not count (nor does it
cost real memory). Glibc may keep freed memory for reuse, so the first step
usually sets the peak; the later ones check it does not grow.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

#: How the CPU peak was measured, recorded in the facts.
CPU_METHODS = ("vmhwm", "rss-sampling")


@dataclass(frozen=True)
class MemoryResult:
    """Peak memory of a step above its baseline.

    Attributes:
        peak_bytes: peak minus baseline (CUDA: allocated tensors; CPU: resident set size).
        reserved_bytes: CUDA only: peak reserved by the caching allocator minus baseline; else None.
        baseline_bytes: what existed before the step (weights, inputs; CPU: the whole process).
        method: ``cuda-allocator``, ``vmhwm`` or ``rss-sampling``.
        repeats: steps run while the peak was tracked.
    """

    peak_bytes: int
    reserved_bytes: int | None
    baseline_bytes: int
    method: str
    repeats: int


class ChildFailed(RuntimeError):
    """The spawned memory-measuring process raised; carries the child's classification."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "oom", "unsupported" or "failed"


# ----------------------------------------------------------------------------- CUDA
def cuda_peak(step: Callable[[], Any], device: torch.device | str, *, repeats: int = 2) -> MemoryResult:
    """Peak CUDA memory of ``repeats`` calls of ``step`` above the memory allocated before them."""
    device = torch.device(device)
    gc.collect()
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_allocated(device)
    baseline_reserved = torch.cuda.memory_reserved(device)
    torch.cuda.reset_peak_memory_stats(device)
    for _ in range(repeats):
        step()
    torch.cuda.synchronize(device)
    return MemoryResult(
        peak_bytes=int(torch.cuda.max_memory_allocated(device) - baseline),
        reserved_bytes=int(torch.cuda.max_memory_reserved(device) - baseline_reserved),
        baseline_bytes=int(baseline),
        method="cuda-allocator",
        repeats=repeats,
    )


# ----------------------------------------------------------------------------- CPU
def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (None where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def current_rss() -> int:
    """Resident set size of this process in bytes (``/proc/self/statm``; ``ru_maxrss`` elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource  # not on Windows; there the sampling has nothing to read

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") is not None


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so reused free memory cannot hide a peak."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _RssSampler:
    """Fallback peak tracking: a thread reading the RSS every ``interval`` seconds."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.peak = current_rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, current_rss())
            time.sleep(self.interval)

    def __enter__(self) -> _RssSampler:  # noqa: PYI034
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, current_rss())


def measure_rss_peak(step: Callable[[], Any], *, repeats: int = 2, force_sampling: bool = False) -> MemoryResult:
    """Peak RSS of ``repeats`` calls of ``step`` above the RSS before them, in *this* process.

    Only meaningful in a fresh process (see :func:`cpu_peak`): in a long-lived one,
    memory freed earlier and kept by the allocator is reused without raising the RSS.
    """
    gc.collect()
    _malloc_trim()
    file_before = _status_kb("RssFile") or 0
    baseline = current_rss()
    if not force_sampling and reset_peak_rss():
        for _ in range(repeats):
            step()
        peak, method = _status_kb("VmHWM"), "vmhwm"
        assert peak is not None
    else:
        with _RssSampler() as sampler:
            for _ in range(repeats):
                step()
        peak, method = sampler.peak, "rss-sampling"
    file_growth = max(0, (_status_kb("RssFile") or 0) - file_before)  # library code paged in: not the step's data
    return MemoryResult(peak_bytes=max(0, int(peak - baseline - file_growth)), reserved_bytes=None,
                        baseline_bytes=int(baseline), method=method, repeats=repeats)


def _child_main(connection: Any, setup: Callable[[], Callable[[], Any]], warmup: Callable[[], Any] | None,
                repeats: int, threads: int | None, force_sampling: bool) -> None:
    """Entry point of the spawned process: warm up, build with ``setup()``, measure, send the result back."""
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if warmup is not None:
            warmup()
        step = setup()
        result: Any = ("ok", measure_rss_peak(step, repeats=repeats, force_sampling=force_sampling))
    except BaseException as error:  # noqa: BLE001 - classified and sent to the parent
        from ablate.measure.point import classify_error

        kind, message = classify_error(error)
        result = ("error", kind, message)
    connection.send(result)
    connection.close()


def cpu_peak(
    setup: Callable[[], Callable[[], Any]],
    *,
    warmup: Callable[[], Any] | None = None,
    repeats: int = 2,
    threads: int | None = None,
    timeout: float = 600.0,
    force_sampling: bool = False,
) -> MemoryResult:
    """Peak RSS of a step measured in a fresh spawned process.

    Args:
        setup: picklable callable (a module-level function or a ``functools.partial``
            of one) run in the child; it builds everything and returns the step.
            What ``setup`` allocates is the baseline, not the peak.
        warmup: picklable callable run in the child before ``setup`` (e.g. a tiny
            step that pages in library code, which would otherwise count as the peak).
        repeats: steps run while the peak is tracked.
        threads: torch threads in the child (use the measuring process's).
        timeout: seconds before the child is killed.
        force_sampling: use the sampling thread even where ``VmHWM`` can be reset (tests).

    Raises:
        ChildFailed: the child raised (``kind`` ``oom``/``unsupported``/``failed``),
            was killed (``oom`` for SIGKILL, the kernel's out-of-memory killer's signal)
            or timed out (``failed``).
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(send, setup, warmup, repeats, threads, force_sampling),
                              name="ablate-peakmem")
    process.start()
    send.close()  # the child holds the only writer: EOF if it dies
    try:
        if not receive.poll(timeout):
            process.kill()
            raise ChildFailed("failed", f"memory measurement timed out after {timeout:.0f} s")
        try:
            result = receive.recv()
        except EOFError:
            process.join(10)
            code = process.exitcode
            if code == -9:
                raise ChildFailed("oom", "the memory-measuring process was killed (SIGKILL; most likely the "
                                         "kernel's out-of-memory killer)") from None
            raise ChildFailed("failed", f"the memory-measuring process died with exit code {code} (a spawned "
                                        "process imports the main script: guard it with "
                                        "`if __name__ == '__main__':`; a script read from stdin cannot be "
                                        "imported)") from None
    finally:
        receive.close()
        process.join(30)
        if process.is_alive():
            process.kill()
            process.join()
    if result[0] == "error":
        raise ChildFailed(result[1], result[2])
    return result[1]


def peakmem_step(step: Callable[[], Any], *, repeats: int = 1) -> None:
    """The body of an asv ``peakmem_`` benchmark: run the step (asv reads the process's peak RSS).

    asv's ``peakmem_`` number is the peak RSS of the whole benchmark process
    (imports, weights and all); :func:`cpu_peak`'s number is the step alone.
    An asv ``track_`` benchmark returning ``measure_point(...).metrics["peak_memory_bytes"]``
    (``unit = "bytes"``) tracks the latter.
    """
    for _ in range(repeats):
        step()
