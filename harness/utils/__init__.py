"""Utilities every layer may use: folder and run-id paths (``paths``), seeded random streams (``rng``), the
torch.distributed helpers of a multi-GPU run (``distributed``) and a device's synchronisation and name
(``device``). The lowest layer of ``harness``: it imports nothing from the project."""
