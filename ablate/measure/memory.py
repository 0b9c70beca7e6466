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
step runs in a *spawned* worker process (nothing inherited from the measuring
process; one worker serves a whole sweep, a failed one is replaced, ``fresh=True``
asks for a process of its own) that imports, runs one warm-up step on a throwaway instance of the
same model and batch shape (it pages in library code and creates per-shape
state such as JIT-compiled kernels, megabytes that would otherwise be counted),
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

import atexit
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

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

from ablate.measure.outcome import classify_error

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
        if resource is None:  # Windows: nothing to read
            return 0
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

    Meaningful only in a process that holds nothing else of size (the worker of
    :func:`cpu_peak`): freed memory is handed back (``malloc_trim``) before the
    baseline, but live objects of other work would share the RSS.
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


def _measure_request(setup: Callable[[], Callable[[], Any]], warmup: Callable[[], Any] | None, repeats: int,
                     threads: int | None, force_sampling: bool, samples: int = 1) -> tuple[Any, ...]:
    """Measurements inside the worker: warm up once, then ``samples`` times build with ``setup()`` and measure.

    Each sample measures a fresh build (its first step creates gradients and optimizer
    state again), after the previous one was freed: a picklable list of results.
    """
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        if warmup is not None:
            warmup()
        results = []
        for _ in range(samples):
            step = setup()
            results.append(measure_rss_peak(step, repeats=repeats, force_sampling=force_sampling))
            del step
        return ("ok", results)
    except BaseException as error:  # noqa: BLE001 - classified and sent to the parent
        return ("error", *classify_error(error))


def _worker_main(connection: Any) -> None:
    """Entry point of the spawned worker: measure each request until told to stop (``None``) or orphaned."""
    while True:
        try:
            request = connection.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        connection.send(_measure_request(*request))
        del request
        gc.collect()


class _MemoryWorker:
    """A spawned process that measures one step per request.

    Spawning a process and importing torch costs more than most measurements;
    one worker therefore serves every point of a sweep. Each measurement still starts
    from a clean slate: everything of the previous step has been freed and
    ``malloc_trim`` has returned it to the OS before the baseline RSS is read and the
    high-water mark is reset, so reused memory cannot hide a peak. A worker that
    reports an error, dies or times out is discarded, and the next point gets a new one.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_worker_main, args=(child,), name="ablate-peakmem")
        self.process.start()
        child.close()  # the worker holds the only other end: EOF if it dies

    def measure(self, request: tuple[Any, ...], timeout: float) -> tuple[Any, ...]:
        self.connection.send(request)
        if not self.connection.poll(timeout):
            raise ChildFailed("failed", f"memory measurement timed out after {timeout:.0f} s")
        try:
            return self.connection.recv()
        except EOFError:
            self.process.join(10)
            code = self.process.exitcode
            if code == -9:
                raise ChildFailed("oom", "the memory-measuring process was killed (SIGKILL; most likely the "
                                         "kernel's out-of-memory killer)") from None
            raise ChildFailed("failed", f"the memory-measuring process died with exit code {code} (a spawned "
                                        "process imports the main script: guard it with "
                                        "`if __name__ == '__main__':`; a script read from stdin cannot be "
                                        "imported)") from None

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self.connection.send(None)
        except (OSError, ValueError):
            pass
        self.connection.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


class SharedWorker:
    """The one memory worker a measuring process reuses across points (held explicitly, not in a global).

    Key: none. There is at most one worker per measuring process; :meth:`acquire`
    returns the live one or spawns a replacement, :meth:`discard` drops one whose
    state is unknown (it failed), and :meth:`close` stops it (also at exit).
    """

    def __init__(self) -> None:
        self.current: _MemoryWorker | None = None

    def acquire(self) -> _MemoryWorker:
        if self.current is None or not self.current.process.is_alive():
            self.close()
            self.current = _MemoryWorker()
        return self.current

    def discard(self, worker: _MemoryWorker) -> None:
        worker.close()
        if worker is self.current:
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None


#: The shared worker of this process (:func:`cpu_peak` uses it unless asked for a fresh one).
SHARED_WORKER = SharedWorker()


def close_memory_worker() -> None:
    """Stop the shared memory-measuring worker (also done at interpreter exit)."""
    SHARED_WORKER.close()


atexit.register(close_memory_worker)


def cpu_peak(setup: Callable[[], Callable[[], Any]], **options: Any) -> MemoryResult:
    """Peak RSS of a step measured in a spawned worker process: :func:`cpu_peaks` with one sample."""
    return cpu_peaks(setup, samples=1, **options)[0]


def cpu_peaks(
    setup: Callable[[], Callable[[], Any]],
    *,
    samples: int = 1,
    warmup: Callable[[], Any] | None = None,
    repeats: int = 2,
    threads: int | None = None,
    timeout: float = 600.0,
    force_sampling: bool = False,
    fresh: bool = False,
) -> list[MemoryResult]:
    """Peak RSS of a step measured ``samples`` times in a spawned worker process (see :class:`_MemoryWorker`).

    Args:
        setup: picklable callable (a module-level function or a ``functools.partial``
            of one) run in the worker; it builds everything and returns the step.
            What ``setup`` allocates is the baseline, not the peak.
        warmup: picklable callable run in the worker before ``setup`` (e.g. a tiny
            step that pages in library code, which would otherwise count as the peak).
        samples: independent measurements, each of a fresh ``setup()`` (one warm-up for all).
        repeats: steps run while the peak is tracked.
        threads: torch threads in the worker (use the measuring process's).
        timeout: seconds before the worker is killed.
        force_sampling: use the sampling thread even where ``VmHWM`` can be reset (tests).
        fresh: measure in a new process of its own instead of the shared worker.

    Raises:
        ChildFailed: the worker raised (``kind`` ``oom``/``unsupported``/``failed``),
            was killed (``oom`` for SIGKILL, the kernel's out-of-memory killer's signal)
            or timed out (``failed``).
    """
    worker = _MemoryWorker() if fresh else SHARED_WORKER.acquire()
    healthy = False
    try:
        result = worker.measure((setup, warmup, repeats, threads, force_sampling, samples), timeout)
        healthy = result[0] == "ok"
    finally:
        if fresh or not healthy:  # never reuse a worker that failed: its memory state is unknown
            SHARED_WORKER.discard(worker)
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
