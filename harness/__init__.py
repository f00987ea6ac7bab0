"""Orchestration: benchmarks, budgets, datasets, the run loop, results, executors and the CLI."""

__version__ = "0.1.0"
