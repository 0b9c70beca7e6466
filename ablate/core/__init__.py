"""The base layer, used everywhere: registries, user errors, metrics, the console, dimensions, devices,
the environment a run records and the code fingerprint."""
