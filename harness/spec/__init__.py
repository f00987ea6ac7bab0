"""What a run is, before it runs: the run spec with its validation, scaling rule and hash (``runspec``),
the declarative tables of benchmarks, budgets and presets (``benchmarks``) and the sweeps built from
them (``sweeps``). Imports the data layer for dataset facts, never the engine or a run."""
