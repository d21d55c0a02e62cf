"""The machine a number was measured on, and what its CPU does in hardware.

A latency means little without its machine: hosts differ in speed, a shared
host drifts, and a CPU without bfloat16 instructions emulates them, so a bf16
prefill there runs ~25x slower than on one with them (measured, BENCHMARKS.md).
Eval records carry ``host()`` and the share of CPU time the hypervisor took
from the VM while the problem ran (``steal_share``). Loading a model in bf16
on a CPU without those instructions warns (``EmulatedBF16Warning``) before
its weights are read, from the Python API as from the CLI.

The processor also decides the texts, not only their speed: greedy decoding
repeats byte for byte on one processor model, but another one's kernels round
differently, and in bfloat16 most texts part after a few hundred characters (an Intel
Xeon with AMX against the AMD EPYC hosts of results/, RESULTS.md). Resuming an
eval file on another processor warns (``OtherProcessorWarning``).
"""

from __future__ import annotations

import functools
import os
import platform
import warnings
from pathlib import Path

BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # x86 flags of bfloat16 matmuls in hardware


@functools.cache
def cpu_info() -> tuple[str, frozenset[str] | None]:
    """(CPU model name, its feature flags or None where /proc/cpuinfo is not there). Read once a process."""
    name = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return name, None
    names = [ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")]
    flags = next((frozenset(ln.split(":", 1)[1].split()) for ln in info if ln.startswith("flags")), None)
    return (names[0] if names else name), flags


def bf16_in_hardware() -> bool | None:
    """Whether this CPU does bfloat16 matmuls in hardware; None where that cannot be told."""
    flags = cpu_info()[1]
    return None if flags is None else bool(flags & BF16_FLAGS)


def bf16_warning(device: str, dtype: str, cpu_bf16: bool | None) -> str | None:
    """The advice for a bfloat16 run on a CPU that emulates bf16 (``cpu_bf16`` False), else None."""
    if dtype != "bfloat16" or not device.startswith("cpu") or cpu_bf16 is not False:
        return None
    return (
        "this CPU has no bfloat16 instructions (" + " / ".join(sorted(BF16_FLAGS)) + "): bfloat16 is emulated, and "
        "prefill runs ~25x slower than on a CPU with them (BENCHMARKS.md); its latencies are not comparable "
        "with runs on one. Consider --dtype float32."
    )


class EmulatedBF16Warning(RuntimeWarning):
    """bfloat16 asked for on a CPU that emulates it: slow, and its latencies not comparable."""


def warn_if_bf16_emulated(device: str, dtype: str) -> None:
    """Warn (once per calling line) before a bf16 load on a CPU without bf16 instructions."""
    advice = bf16_warning(device, dtype, bf16_in_hardware())
    if advice:
        warnings.warn(advice, EmulatedBF16Warning, stacklevel=2)


def processor(h: dict | None) -> str | None:
    """What computed a record (its GPU, else its CPU model) from ``host()``'s dict; None where not recorded."""
    return (h.get("gpu") or h.get("cpu")) if h else None


class OtherProcessorWarning(RuntimeWarning):
    """An eval file resumed on another processor model than its records were computed on: its texts may mix."""


def cpu_times() -> tuple[int, int] | None:
    """(steal, total): the clock ticks of all CPUs since boot that the hypervisor gave to other guests
    ("steal"), and all ticks; None where /proc/stat is not there (not Linux) or has no steal column."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal (guest time is in user)
    return ticks[7], sum(ticks)


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of the CPUs' time stolen by the hypervisor between two ``cpu_times()`` readings.

    A shared cloud VM's speed depends on its neighbours: on one 2-CPU host an eval went from 8.2 to 3.0
    SRM tokens per second of latency within ten minutes with nothing else running in the VM, while the hypervisor
    took half of its CPU time (RESULTS.md). The load average cannot see this; steal can. It does not see
    everything: an hour later the same texts ran 2.1x slower than they had at first, with steal at most
    11%, so a low steal does not prove a quiet host (neighbours also share caches and memory bandwidth)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def host() -> dict:
    """The machine a latency is measured on. ``node`` and ``boot`` (Linux's boot id) tell machines apart
    where the CPU names do not: cloud VMs often share both a host name and a CPU name."""
    import torch

    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "node": platform.node(), "boot": boot, "cpu": cpu_info()[0], "cpu_bf16": bf16_in_hardware(), "cpus": cpus,
        "torch_threads": torch.get_num_threads(), "gpu": gpu,
    }
