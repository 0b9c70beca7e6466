"""asv benchmarks of ablate: speed, peak memory and accuracy, with params generated from ``suites/nightly.toml``."""
