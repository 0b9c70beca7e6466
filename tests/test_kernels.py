"""Every attention kernel and path against the reference path: output, input gradients, every parameter's gradient.

Parametrized over the kernel registry and the encoding registry: a kernel (one module
of ablate/model/attention/kernels registering itself with its condition) or a bias encoding
is tested the moment it is registered, wherever the kernel's condition holds on the
grid below (float64; unpadded, left-padded with per-sequence positions, right-padded
with shared positions; encoder and causal).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ablate.model.attention import KERNELS, Tuning, attention, case_of, kernels, plan_attention, traits_of
from ablate.model.attention.reference import reference_attention
from ablate.model.encodings import ENCODINGS, create_encoding

H, DH, B, L = 2, 4, 2, 13
#: Every fast path reachable at this tiny size, in blocks of a few rows (several blocks, the last one short).
TUNING = Tuning(shared_mask_max_elements=0, shared_learned_mask_max_elements=0, causal_row_block=5,
                trained_mask_rows=2, block_rows=5, fused_block_rows=4, far_keys_length_per_distance=0,
                backward_rows=3)
LAYOUTS = ("unpadded", "left-padded", "right-padded")


def _bias_encodings() -> list[dict]:
    """Every registered encoding with a bias or a value term, plus clipped terms short enough to have far keys."""
    specs = []
    for name in ENCODINGS.names():
        encoding = create_encoding(name, d_model=H * DH, num_heads=H, causal=False)
        if encoding.has_bias or encoding.mixes_values:
            specs.append({"name": name, **({"mlp_width": 4} if name == "fire" else {})})
    specs += [{"name": "t5", "num_buckets": 6, "max_distance": 4}, {"name": "nezha", "max_relative_position": 3},
              {"name": "nezha", "max_relative_position": 3, "values": False},
              {"name": "randomized", "base": {"name": "t5", "num_buckets": 6, "max_distance": 4}, "max_length": 40}]
    return specs


ENCODING_SPECS = _bias_encodings()


def _label(spec: dict) -> str:
    params = "".join(f"-{k}={v['name'] if isinstance(v, dict) else v}" for k, v in spec.items()
                     if k not in ("name", "mlp_width"))
    return spec["name"] + params


def make(spec: dict, causal: bool):
    torch.manual_seed(1)
    encoding = create_encoding(spec, d_model=H * DH, num_heads=H, causal=causal).double()
    with torch.no_grad():  # non-trivial values for parameters that start at zero
        for parameter in encoding.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return encoding


def inputs(layout: str):
    """``q, k, v`` ``(B, H, L, Dh)`` float64, positions and padding mask of one layout."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(B, H, L, DH, dtype=torch.float64, requires_grad=True) for _ in range(3))
    if layout == "unpadded":
        return q, k, v, torch.arange(L), None
    padding_mask = torch.ones(B, L, dtype=torch.bool)
    if layout == "right-padded":  # shared positions 0..L-1; padding keys masked, padding queries see themselves
        padding_mask[1, -4:] = False
        return q, k, v, torch.arange(L), padding_mask
    padding_mask[1, :3] = False  # left padding: the second row's positions start at its first real token
    return q, k, v, (padding_mask.long().cumsum(-1) - 1).clamp(min=0), padding_mask


def cases_where(applies, spec: dict):
    """``(layout, causal)`` of the grid where ``applies(traits, case)`` holds for ``spec`` in training."""
    found = []
    for layout in LAYOUTS:
        for causal in (False, True):
            encoding = make(spec, causal)
            _, _, _, positions, padding_mask = inputs(layout)
            with torch.enable_grad():
                case = case_of(positions, padding_mask, causal=causal, backend="sdpa", check_contiguity=True)
            if applies(traits_of(encoding), case):
                found.append((layout, causal))
    return found


def check_against_the_reference(run, spec: dict, layout: str, causal: bool) -> None:
    encoding = make(spec, causal)
    q, k, v, positions, padding_mask = inputs(layout)
    leaves = [q, k, v, *(p for p in encoding.parameters() if p.requires_grad)]
    names = ["q", "k", "v", *(n for n, p in encoding.named_parameters() if p.requires_grad)]
    upstream = torch.randn(B, H, L, DH, dtype=torch.float64)
    expected = reference_attention(q, k, v, encoding, positions, padding_mask, causal=causal)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), leaves)
    got = run(q, k, v, encoding, positions, padding_mask, causal)
    grads = torch.autograd.grad((got * upstream).sum(), leaves, allow_unused=True)
    where = f"{_label(spec)}, {layout}, {'causal' if causal else 'encoder'}"
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10, msg=lambda m: f"{where}: output: {m}")
    for label, actual, reference in zip(names, grads, expected_grads):
        assert actual is not None, f"{where}: {label} gets no gradient"
        torch.testing.assert_close(actual, reference, rtol=1e-9, atol=1e-10,
                                   msg=lambda m, label=label: f"{where}: {label}: {m}")
    for label, reference in zip(names[3:], expected_grads[3:]):
        assert bool(reference.abs().sum() > 0), f"{where}: {label} gets no gradient even in the reference"


def _kernel_cases() -> list[tuple[str, dict]]:
    return [(kernel.name, spec) for kernel in kernels() for spec in ENCODING_SPECS
            if cases_where(lambda t, c, kernel=kernel: kernel.applies(t, c, TUNING), spec)]


KERNEL_CASES = _kernel_cases()


@pytest.mark.parametrize("kernel_name, spec", KERNEL_CASES, ids=[f"{k}-{_label(s)}" for k, s in KERNEL_CASES])
def test_every_kernel_equals_the_reference_wherever_its_condition_holds(kernel_name: str, spec: dict) -> None:
    kernel = KERNELS.get(kernel_name)

    def run(q, k, v, encoding, positions, padding_mask, causal):  # the kernel as its registration runs it
        plan = plan_attention(encoding, positions, padding_mask, causal=causal, backend="sdpa", dtype=q.dtype,
                              tuning=TUNING, path=kernel_name if kernel.kind == "blocks" else "reference")
        return kernel.attend(q, k, v, plan)

    for layout, causal in cases_where(lambda t, c: kernel.applies(t, c, TUNING), spec):
        check_against_the_reference(run, spec, layout, causal)


def test_every_registered_kernel_is_reached_by_the_grid() -> None:
    reached = {name for name, _ in KERNEL_CASES}
    assert reached == set(KERNELS.names()), f"no case of the grid applies to {set(KERNELS.names()) - reached}"


#: Built-in paths that take a bias, and where each is valid (its conditions of use are the planner's).
BUILT_IN = {
    "blocks": lambda traits, case: traits.has_bias or traits.mixes_values,
    "shared-mask": lambda traits, case: traits.static_bias and not traits.mixes_values,
    "query-bias": lambda traits, case: traits.has_bias and not traits.mixes_values,
}
PATH_CASES = [(path, spec) for path, valid in BUILT_IN.items() for spec in ENCODING_SPECS if cases_where(valid, spec)]


@pytest.mark.parametrize("path, spec", PATH_CASES, ids=[f"{p}-{_label(s)}" for p, s in PATH_CASES])
def test_every_built_in_path_with_a_bias_equals_the_reference(path: str, spec: dict) -> None:
    def run(q, k, v, encoding, positions, padding_mask, causal):
        return attention(q, k, v, encoding, positions, padding_mask, causal=causal, tuning=TUNING, path=path)

    for layout, causal in cases_where(BUILT_IN[path], spec):
        check_against_the_reference(run, spec, layout, causal)


def test_docs_attention_names_every_registered_kernel_and_its_order() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "attention.md").read_text()
    for kernel in kernels():
        assert f"`{kernel.name}` (`{kernel.function.__name__}`)" in page, kernel.name
        if kernel.kind == "blocks":
            assert f"| blocks, order {kernel.order} |" in page, kernel.name
