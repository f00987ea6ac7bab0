"""The device helpers of timing and records: wait for a device's kernels, and a device's name as results write it."""

from __future__ import annotations

import torch

__all__ = ["device_name", "synchronize"]


def synchronize(device: torch.device | str) -> None:
    """Wait until ``device`` has run every queued kernel (CUDA); nothing to wait for on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device | str) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``: the device and, for CUDA, its model."""
    device = torch.device(device)
    return str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
