"""Result files: the environment record, config hashes and run ids."""

from __future__ import annotations

import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from harness.spec.runspec import config_hash
from harness.utils.device import device_name


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the harness's checkout; ``None`` outside one."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit() -> str | None:
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (the commit alone does not then name the code)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` of ``/proc/cpuinfo`` (Linux), if there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_vendor() -> str | None:
    """The CPU's vendor (``GenuineIntel``, ``AuthenticAMD``; ``/proc/cpuinfo``'s ``vendor_id``), if known."""
    return _cpuinfo("vendor_id")


def math_libraries() -> dict[str, Any]:
    """The BLAS and LAPACK torch was built with (``BLAS_INFO``/``LAPACK_INFO`` of ``torch.__config__.show()``)
    and the loaded thread pools (threadpoolctl: BLAS and OpenMP libraries, versions, threads, kernels)."""
    from threadpoolctl import threadpool_info

    shown = torch.__config__.show()
    build = dict(re.findall(r"\b(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", shown))
    pools = [{k: info.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "architecture")
              if info.get(k) is not None} for info in threadpool_info()]
    return {"torch_blas": build.get("BLAS_INFO"), "torch_lapack": build.get("LAPACK_INFO"),
            "mkl": torch.backends.mkl.is_available(), "threadpools": pools}


def environment(device: torch.device, config: dict[str, Any]) -> dict[str, Any]:
    """Versions, device, host, git commit (and whether the checkout differed from it) and config hash,
    recorded in every result."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in ("torch", "torchvision", "numpy", "pandas", "nasbench-pytorch",
                                               "submitit", "rome-harness")},
        "device": device_name(device),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "threads": torch.get_num_threads(),
        "cpu_model": cpu_model(),
        "cpu_vendor": cpu_vendor(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # ATEN_CPU_CAPABILITY: default/avx2/avx512
        "math_libraries": math_libraries(),
        "host": platform.node(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "config_hash": config_hash(config),
    }
