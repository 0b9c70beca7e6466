"""The built-in suites and claim files (``*.toml``), shipped in the wheel as the package ``ablate.suites``.

No code lives here: this file makes the folder a regular package so that
``importlib.resources.files("ablate.suites")`` is a plain folder in a wheel and in
an editable install alike (see setup.py and ``ablate.suite.load.suites_dir``).
"""
