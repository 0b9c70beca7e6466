"""ablate: a benchmark and ablation harness for positional encodings and pooling."""

__version__ = "0.1.0"


def load_results(path):  # noqa: ANN001, ANN201 - thin re-export, typed in ablate.store
    """Load stored results as one tidy DataFrame; see :func:`ablate.store.load_results`.

    Imported on call: the package root runs before every submodule import, so it
    stays free of torch and pandas (``import ablate.errors`` costs nothing else).
    """
    from ablate.store import load_results as _load

    return _load(path)


def load_curves(path):  # noqa: ANN001, ANN201 - thin re-export, typed in ablate.store
    """Every run's learning curve (step, train loss, validation metric); see :func:`ablate.store.load_curves`."""
    from ablate.store import load_curves as _load

    return _load(path)
