"""Utilities every layer may use: folder and run-id paths (``paths``), seeded random streams (``rng``) and
the torch.distributed helpers of a multi-GPU run (``distributed``). The lowest layer of ``harness``: it imports
nothing from the project."""
