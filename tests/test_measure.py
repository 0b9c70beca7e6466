"""Throughput and peak memory: statistics from known samples, error paths with fakes, real CPU memory."""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.benchmark.utils.common import Measurement

from ablate.measure import (
    Timing,
    cpu_peak,
    cuda_peak,
    environment_facts,
    is_oom,
    measure_point,
    measure_sweep,
    median_iqr,
    time_callable,
    tokens_per_second,
)
import ablate.measure.point as point_module
from ablate.measure.memory import ChildFailed
from ablate.measure.run import run_measurement
from ablate.suite.run_config import parse_run
from ablate.suite.schema import ModelSection
from ablate.analysis.stats import fit_power_law, scaling_exponents
from ablate.model.transformer import ModelConfig, TransformerModel

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
MiB = 2**20
TINY = ModelConfig(vocab_size=16, num_classes=4, d_model=16, num_heads=2, num_layers=1)
FAST = {"min_run_time": 0.01, "max_run_time": 0.05, "threads": 1}


# ----------------------------------------------------------------------------- statistics
def test_median_iqr_of_known_samples_matches_torch_benchmark():
    times = [5.0, 1.0, 4.0, 2.0, 3.0, 100.0]
    median, iqr = median_iqr(times)
    assert median == pytest.approx(3.5)
    assert iqr == pytest.approx(4.75 - 2.25)
    reference = Measurement(number_per_run=1, raw_times=times, task_spec=None)  # type: ignore[arg-type]
    assert (median, iqr) == pytest.approx((reference.median, reference.iqr))
    timing = Timing.from_times([0.2, 0.1, 0.3], number_per_run=10, threads=3)
    assert (timing.median_s, timing.n, timing.threads) == (0.2, 3, 3)
    assert timing.iqr_s == pytest.approx(0.1)
    assert timing.timed_s == pytest.approx(6.0)  # 0.6 s per call summed over blocks x 10 calls per block
    assert timing.relative_iqr == pytest.approx(0.5)
    with pytest.raises(ValueError, match="zero measurements"):
        median_iqr([])


def test_tokens_per_second_arithmetic():
    assert tokens_per_second(8 * 512, 0.25) == 16384.0
    assert math.isnan(tokens_per_second(10, 0.0))
    assert Timing.from_times([0.5, 0.5]).tokens_per_s(100) == 200.0


def test_measure_point_reports_batch_times_length_over_median(monkeypatch):
    monkeypatch.setattr(point_module, "time_callable", lambda *a, **k: Timing.from_times([0.4, 0.5, 0.7], threads=1))
    result = measure_point(TINY, batch_size=4, length=16, memory=False, threads=1)
    assert result.status == "ok", result.reason
    assert result.metrics == {"tokens_per_s": 4 * 16 / 0.5, "time_median_s": 0.5, "time_iqr_s": pytest.approx(0.15)}
    assert result.facts["measurements"] == 3 and result.facts["threads"] == 1


def test_time_callable_warms_up_then_times_blocks_with_the_given_clock():
    now = [0.0]

    def clock() -> float:  # every reading advances 0.25 s: each timed block lasts 0.25 s
        now[0] += 0.25
        return now[0]

    calls = []
    before = torch.get_num_threads()
    timing = time_callable(lambda: calls.append(torch.get_num_threads()), threads=1, warmup=3, min_run_time=0.5,
                           clock=clock)
    assert calls[:3] == [1, 1, 1]  # the warm-up ran first, with the requested threads
    assert (timing.median_s, timing.iqr_s, timing.number_per_run) == (0.25, 0.0, 1)
    assert timing.n == 4  # the adaptive loop needs more than 3 blocks before the spread may stop it
    assert (timing.threads, timing.warmup_calls) == (1, 3)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        time_callable(lambda: None, threads=0)


# ----------------------------------------------------------------------------- failure paths with fakes
class FakeWorkload:
    """Stands in for the model: its step raises ``error`` at lengths >= ``from_length``."""

    def __init__(self, spec, error: BaseException, from_length: int) -> None:
        self.spec, self.error, self.from_length = spec, error, from_length

    def step(self) -> None:
        if self.spec.length >= self.from_length:
            raise self.error


@pytest.mark.parametrize("error, status", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "oom"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                  "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"), "oom"),
    (MemoryError(), "oom"),
    (RuntimeError("shape mismatch"), "failed"),
])
def test_an_error_at_one_length_is_its_status_and_the_sweep_goes_on(monkeypatch, error, status):
    monkeypatch.setattr(point_module, "make_workload", lambda spec: FakeWorkload(spec, error, from_length=32))
    freed = []
    monkeypatch.setattr(point_module, "free_memory", lambda device: freed.append(device))
    results = measure_sweep(TINY, [8, 16, 32, 64], memory=False, **FAST)
    assert [r.status for r in results.values()] == ["ok", "ok", status, status]
    assert results[32].metrics == {} and type(error).__name__ in results[32].reason
    assert results[16].metrics["tokens_per_s"] > 0
    assert len(freed) == 2  # memory is released after every failed point
    assert is_oom(error) == (status == "oom")
    if status == "failed":
        assert "Traceback" in results[64].reason


def test_a_length_the_encoding_cannot_represent_is_unsupported():
    config = {**TINY.to_dict(), "encoding": {"name": "learned", "max_positions": 16}}
    results = measure_sweep(config, [8, 32], memory=False, **FAST)
    assert results[8].status == "ok"
    assert results[32].status == "unsupported" and "max_positions" in results[32].reason


def test_float16_on_cpu_is_a_clear_error():
    with pytest.raises(ValueError, match="float16.*only supported.*on CUDA.*bfloat16"):
        measure_point(TINY, dtype="float16", device="cpu", memory=False)
    with pytest.raises(ValueError, match="mode must be one of"):
        measure_point(TINY, mode="backward", memory=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        measure_point(TINY, device="cuda", memory=False)


# ----------------------------------------------------------------------------- real, tiny, CPU
@pytest.mark.parametrize("mode", ["forward", "train_step"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_measure_point_on_cpu(mode, dtype):
    result = measure_point({**TINY.to_dict(), "pooling": "none"}, mode=mode, dtype=dtype, batch_size=2, length=8,
                           memory=False, device="auto" if not torch.cuda.is_available() else "cpu", **FAST)
    assert result.status == "ok", result.reason
    assert set(result.metrics) == {"tokens_per_s", "time_median_s", "time_iqr_s"}
    assert result.metrics["tokens_per_s"] == pytest.approx(16 / result.metrics["time_median_s"])
    assert result.facts["threads"] == 1 and result.facts["env.threads"] == 1
    assert result.facts["device"] == "cpu" and result.facts["mode"] == mode


def _allocate_and_hold(nbytes: int, hold_s: float):
    """Runs in the spawned child: a step that fills ``nbytes`` of a torch tensor (then frees it)."""

    def step() -> None:
        buffer = torch.ones(nbytes // 4, dtype=torch.float32)  # written, so resident
        time.sleep(hold_s)
        del buffer

    return step


def _allocate_chunks(count: int, nbytes: int):
    """A step holding ``count`` written tensors of ``nbytes`` at once: sizes glibc serves from its heap
    once a freed mmap chunk has raised its threshold, so freed memory stays with the process unless trimmed."""

    def step() -> None:
        chunks = [torch.ones(nbytes // 4, dtype=torch.float32) for _ in range(count)]
        del chunks

    return step


def _raise_in_child():
    raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")


@pytest.mark.parametrize("sampling", [False, True], ids=["vmhwm", "rss-sampling"])
def test_cpu_peak_sees_a_known_torch_allocation(sampling):
    result = cpu_peak(functools.partial(_allocate_and_hold, 64 * MiB, 0.05 if sampling else 0.0),
                      warmup=functools.partial(_allocate_and_hold, MiB, 0.0), threads=1, force_sampling=sampling)
    assert result.method == ("rss-sampling" if sampling else "vmhwm")
    assert result.peak_bytes == pytest.approx(64 * MiB, rel=0.10)
    assert result.reserved_bytes is None and result.baseline_bytes > 64 * MiB  # the child imported torch


def test_the_memory_worker_is_reused_and_reused_memory_cannot_hide_a_peak():
    from ablate.measure import memory

    memory.close_memory_worker()
    big = cpu_peak(functools.partial(_allocate_and_hold, 128 * MiB, 0.0), threads=1)
    first = memory.SHARED_WORKER.current.process.pid
    # The 128 MiB freed by the first step must not absorb the second step's 64 MiB.
    small = cpu_peak(functools.partial(_allocate_and_hold, 64 * MiB, 0.0), threads=1)
    assert memory.SHARED_WORKER.current.process.pid == first  # one process served both points
    heap = [cpu_peak(functools.partial(_allocate_chunks, 32, 2 * MiB), threads=1) for _ in range(2)]
    assert [h.peak_bytes for h in heap] == [pytest.approx(64 * MiB, rel=0.10)] * 2
    assert memory.SHARED_WORKER.current.process.pid == first
    assert big.peak_bytes == pytest.approx(128 * MiB, rel=0.10)
    assert small.peak_bytes == pytest.approx(64 * MiB, rel=0.10)
    # A failure discards the worker; the next point gets a new one and still measures right.
    with pytest.raises(ChildFailed):
        cpu_peak(_raise_in_child, threads=1)
    assert memory.SHARED_WORKER.current is None
    again = cpu_peak(functools.partial(_allocate_and_hold, 64 * MiB, 0.0), threads=1)
    assert memory.SHARED_WORKER.current.process.pid != first
    assert again.peak_bytes == pytest.approx(64 * MiB, rel=0.10)
    fresh = cpu_peak(functools.partial(_allocate_and_hold, 64 * MiB, 0.0), threads=1, fresh=True)
    assert fresh.peak_bytes == pytest.approx(64 * MiB, rel=0.10)
    memory.close_memory_worker()


def test_cpu_peak_reports_the_childs_out_of_memory():
    with pytest.raises(ChildFailed, match="can't allocate") as caught:
        cpu_peak(_raise_in_child, threads=1)
    assert caught.value.kind == "oom"


def test_measure_point_measures_cpu_memory_in_a_spawned_process():
    config = ModelConfig(vocab_size=1024, num_classes=4, d_model=64, num_heads=2, num_layers=1)
    param_bytes = 4 * sum(p.numel() for p in TransformerModel(config).parameters())
    result = measure_point(config, mode="train_step", batch_size=2, length=16, memory=True, **FAST)
    assert result.status == "ok", result.reason
    # the step's gradients and AdamW's two moments are counted (the warm-up ran on another instance)
    assert result.metrics["peak_memory_bytes"] >= 3 * param_bytes
    assert "peak_reserved_bytes" not in result.metrics
    assert result.facts["memory_method"] in ("vmhwm", "rss-sampling")
    assert result.facts["memory_baseline_bytes"] > result.metrics["peak_memory_bytes"]


def test_run_measurement_gives_tidy_rows_per_length():
    config = {
        "kind": "measure",
        "task": {"name": "order", "vocab": 4},
        "model": ModelSection(d_model=16, num_heads=2, num_layers=1, causal=False, pooling={"name": "mean"},
                              encoding={"name": "learned", "max_positions": 16}).model_dump(mode="json"),
        "train": {"length": 8},
        "measure": {"mode": "forward", "batch_size": 2, "dtype": "float32", "device": "cpu", "threads": 1,
                    "lengths": [8, 32], "memory": False, "protocol": "rounds", "min_run_time": 0.01,
                    "budget_s": 0.05, "precision": 0.05, "sample_s": 0.001},
        "seed": 0,
    }
    status, reason, rows = run_measurement(parse_run(config))
    assert status == "ok" and reason is None
    assert {(r.metric, r.eval_length, r.status) for r in rows} == {
        (m, n, s) for m in ("tokens_per_s", "time_median_s", "time_iqr_s") for n, s in ((8, "ok"), (32, "unsupported"))
    }
    assert all(math.isnan(r.value) for r in rows if r.status != "ok")
    fp16 = {**config, "measure": {**config["measure"], "dtype": "float16"}}
    assert run_measurement(parse_run(fp16))[0] == "unsupported"


def test_environment_facts_never_fail_and_name_the_machine():
    facts = environment_facts("cpu", threads=3)
    assert facts["threads"] == 3 and facts["torch"] == torch.__version__
    for key in ("python", "hostname", "cpu", "cpus", "git_commit", "device", "device_name"):
        assert key in facts
    assert facts["git_commit"] is None or isinstance(facts["git_commit"], str)


# ----------------------------------------------------------------------------- scaling
@pytest.mark.parametrize("exponent", [1.0, 2.0])
def test_fit_power_law_recovers_the_exponent_with_a_covering_interval(exponent):
    rng = np.random.default_rng(int(exponent))
    lengths = np.repeat([64, 128, 256, 512, 1024, 2048], 3)
    values = 3e-6 * lengths**exponent * np.exp(rng.normal(0, 0.05, lengths.size))
    fit = fit_power_law(lengths, values)
    assert fit.ci_low < exponent < fit.ci_high
    assert fit.ci_high - fit.ci_low < 0.1
    assert fit.exponent == pytest.approx(exponent, abs=0.05) and fit.r_squared > 0.99 and fit.n_points == 18
    exact = fit_power_law([10, 100, 1000], [2 * 10**exponent, 2 * 100**exponent, 2 * 1000**exponent])
    assert exact.exponent == pytest.approx(exponent) and exact.intercept == pytest.approx(math.log(2))
    assert exact.predict(10_000) == pytest.approx(2 * 10_000**exponent)


def test_fit_power_law_needs_positive_points_and_three_for_an_interval():
    two = fit_power_law([64, 128, 256, 512], [1.0, 2.0, 0.0, math.nan])
    assert two.n_points == 2 and two.exponent == pytest.approx(1.0) and math.isnan(two.ci_low)
    assert math.isnan(fit_power_law([64, 64], [1.0, 2.0]).exponent)
    with pytest.raises(ValueError, match="differ in size"):
        fit_power_law([64, 128], [1.0])


def test_scaling_exponents_fit_each_group_and_ignore_rows_that_are_not_ok():
    rows = []
    for encoding, exponent in (("rope", 1.0), ("t5", 2.0)):
        for length in (128, 256, 512, 1024):
            rows.append({"encoding": encoding, "metric": "peak_memory_bytes", "eval_length": length,
                         "value": 1000.0 * length**exponent, "status": "ok"})
        rows.append({"encoding": encoding, "metric": "peak_memory_bytes", "eval_length": 4096,
                     "value": 1.0, "status": "oom"})
    fits = scaling_exponents(pd.DataFrame(rows), "peak_memory_bytes", by=["encoding"]).set_index("encoding")
    assert fits.loc["rope", "exponent"] == pytest.approx(1.0)
    assert fits.loc["t5", "exponent"] == pytest.approx(2.0)
    assert (fits["n_points"] == 4).all() and (fits["n_lengths"] == 4).all()


# ----------------------------------------------------------------------------- CUDA
@needs_cuda
def test_cuda_peak_sees_a_known_allocation():
    device = torch.device("cuda")

    def step() -> None:
        buffer = torch.ones(64 * MiB // 4, device=device)
        del buffer

    result = cuda_peak(step, device)
    assert result.peak_bytes == 64 * MiB and result.reserved_bytes >= 64 * MiB
    assert result.method == "cuda-allocator"


@needs_cuda
@pytest.mark.parametrize("mode", ["forward", "train_step"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_measure_point_on_cuda(mode, dtype):
    result = measure_point(TINY, mode=mode, dtype=dtype, batch_size=4, length=128, device="cuda", memory=True,
                           min_run_time=0.05, max_run_time=0.5)
    assert result.status == "ok", result.reason
    assert result.metrics["peak_memory_bytes"] > 0 and result.metrics["peak_reserved_bytes"] >= 0
    assert result.facts["env.device"].startswith("cuda") and result.facts["env.cuda_sms"] > 0
    assert result.facts["memory_method"] == "cuda-allocator"


@needs_cuda
def test_cuda_out_of_memory_is_a_status_and_memory_is_freed():
    device = torch.device("cuda", torch.cuda.current_device())
    wide = ModelConfig(vocab_size=16, num_classes=4, d_model=256, num_heads=2, num_layers=1)
    cap = 128 * MiB  # an allocator cap: the batch runs out of GPU memory without a large CPU copy
    torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(device).total_memory, device)
    try:
        small = measure_point(wide, batch_size=64, length=16, device="cuda", memory=True, **FAST)
        assert small.status == "ok", small.reason
        allocated = torch.cuda.memory_allocated(device)  # now with cuBLAS workspaces, which stay
        # 64 x 4096 tokens: 4 MiB of inputs and targets fit, the 256 MiB of embeddings do not
        results = measure_sweep(wide, [4096, 16], batch_size=64, device="cuda", memory=True, **FAST)
        assert results[4096].status == "oom" and "OutOfMemoryError" in results[4096].reason
        assert results[16].status == "ok", results[16].reason  # the sweep went on
        assert torch.cuda.memory_allocated(device) <= allocated + MiB  # the failed point's tensors are gone
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
        torch.cuda.empty_cache()
