"""The process's peak resident memory per step, for the benchmarks that measure steps in one process (Linux)."""

from __future__ import annotations

from pathlib import Path


def reset_peak() -> None:
    """Reset the process's resident high-water mark (/proc/self/clear_refs), so that each step has its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mib() -> float:
    """The resident high-water mark since the last reset, in MiB (0 where /proc is not there)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
