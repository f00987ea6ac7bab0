"""The harness around the search spaces (``spaces``) and methods (``methods``), in layers, lowest first:
``utils`` (paths, RNG, distributed), ``data`` (datasets, loaders), ``spec`` (run spec, benchmarks, budgets,
sweeps), ``engine`` (search loop, train/eval), ``runs`` (a run and its folder, executors), ``evidence``
(statistics, claims, check, profiles) and, above ``reports``, ``cli`` (the ``harness`` command). A module
imports only from its own subpackage or lower layers (``lint-imports``, docs/architecture.md)."""

__version__ = "0.1.0"
