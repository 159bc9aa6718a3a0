"""Whether an array task fits a node of its SLURM partition, checked before anything is submitted.

SLURM accepts an array whose tasks ask more CPUs than any node of the partition has, and then keeps every task
pending for ever (squeue's reason: PartitionConfig) without a word to the user; too many GPUs or too much memory
``sbatch`` refuses in words that name no flag of ours. ``run_sweep.py --slurm`` therefore reads the partition's nodes
from ``sinfo`` first and refuses such a request with one line that names the flag to change. Where ``sinfo`` is
missing or says nothing useful, nothing is judged and ``sbatch`` has the last word.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from experiments.sweep.slurm import SlurmOptions

SINFO_FORMAT = "%P|%c|%G|%m"
"""Partition (the default one marked ``*``), CPUs per node, generic resources (GPUs), memory per node in MB."""
MEMORY_KEYS = ("mem", "mem_per_cpu", "mem_per_gpu")
"""``--sbatch`` keys that request memory (as ``parse_sbatch`` spells them)."""
_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class Node:
    """One kind of node of a partition, as one line of ``sinfo -e`` shows it."""

    partition: str
    default: bool
    cpus: int
    gpus: int
    memory_mb: int | None


def sinfo_text() -> str | None:
    """``sinfo``'s line per partition and node kind (hidden partitions too), or None where it cannot answer."""
    try:
        done = subprocess.run(
            ["sinfo", "-h", "-a", "-e", "-o", SINFO_FORMAT], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _leading_int(text: str) -> int | None:
    """The number ``sinfo`` prints, which ends with ``+`` where it stands for the smallest of several."""
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def gpu_count(gres: str) -> int:
    """GPUs in a node's generic resources: ``gpu:4``, ``gpu:a100:4(S:0-1)``, ``gpu:a100:2,gpu:v100:2``, ``(null)``."""
    return sum(int(n) for n in re.findall(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)", gres))


def parse_sinfo(text: str) -> list[Node]:
    """The nodes of ``sinfo -o SINFO_FORMAT``'s output; lines it cannot read are left out."""
    nodes = []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4 or not fields[0]:
            continue
        name, cpus, gres, memory = fields
        count = _leading_int(cpus)
        if count is None:
            continue
        nodes.append(Node(name.rstrip("*"), name.endswith("*"), count, gpu_count(gres), _leading_int(memory)))
    return nodes


def memory_mb(size: str) -> float | None:
    """An sbatch memory size in MB: a number with an optional unit (K, M, G, T; MB without one), or None."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT])?B?\s*", size, flags=re.IGNORECASE)
    if not match:
        return None
    return float(match.group(1)) * _UNITS[(match.group(2) or "M").upper()]


def task_memory(options: SlurmOptions) -> tuple[str, float] | None:
    """(the flag as typed, MB per task) of a memory request among the ``--sbatch`` options; None if there is none,
    or it is ``mem=0`` (a whole node's memory, which any node has)."""
    for key in MEMORY_KEYS:
        value = options.extra.get(key)
        size = memory_mb(value) if value is not None else None
        if size is None or size == 0:
            continue
        per = {"mem": 1, "mem_per_cpu": options.cpus_per_run, "mem_per_gpu": options.gpus_per_run}[key]
        return f"--sbatch {key}={value}", size * per
    return None


def _partition_nodes(options: SlurmOptions, nodes: Sequence[Node]) -> tuple[str, list[Node]] | str | None:
    """(the partition's name, its nodes); a refusal line for a partition SLURM does not have; None where no partition
    can be told (no default partition, nothing listed)."""
    known = list(dict.fromkeys(n.partition for n in nodes))
    if not options.partition:
        default = [n for n in nodes if n.default]
        return (default[0].partition, default) if default else None
    wanted = [p.strip() for p in options.partition.split(",") if p.strip()]
    missing = [p for p in wanted if p not in known]
    if missing and known:
        return f"--partition {missing[0]}: SLURM has no such partition (sinfo lists {', '.join(known)})"
    chosen = [n for n in nodes if n.partition in wanted]
    return (options.partition, chosen) if chosen else None


def misfit(options: SlurmOptions, nodes: Sequence[Node]) -> str | None:
    """One line saying which request no node of the partition can meet and how to ask less; None when a node can."""
    found = _partition_nodes(options, nodes)
    if found is None or isinstance(found, str):
        return found
    name, members = found
    memory = task_memory(options)
    where = f"than any node of partition {name} has"
    tail = "no task could ever start"
    most_cpus = max(n.cpus for n in members)
    if options.cpus_per_run > most_cpus:
        return (
            f"--cpus-per-run {options.cpus_per_run} asks more CPUs {where} ({most_cpus}, sinfo): {tail}; pass "
            f"--cpus-per-run {most_cpus} or fewer, or another --partition"
        )
    most_gpus = max(n.gpus for n in members)
    if options.gpus_per_run > most_gpus:
        fix = f"--gpus-per-run {most_gpus} or fewer" if most_gpus else "--gpus-per-run 0"
        return (
            f"--gpus-per-run {options.gpus_per_run} asks more GPUs {where} ({most_gpus}, sinfo): {tail}; pass {fix}, "
            f"or a partition with GPUs (--partition)"
        )
    sizes = [n.memory_mb for n in members if n.memory_mb is not None]
    if memory and sizes and memory[1] > max(sizes):
        return (
            f"{memory[0]} asks {memory[1]:.0f} MB per task, more memory {where} ({max(sizes)} MB, sinfo): {tail}; "
            f"ask for less, or another --partition"
        )
    if any(_fits(n, options, memory) for n in members):
        return None
    return (
        f"no node of partition {name} has --cpus-per-run {options.cpus_per_run}, --gpus-per-run "
        f"{options.gpus_per_run}{f' and {memory[0]}' if memory else ''} at once (sinfo: "
        f"{'; '.join(f'{n.cpus} CPUs, {n.gpus} GPUs, {n.memory_mb} MB' for n in members)}): {tail}"
    )


def _fits(node: Node, options: SlurmOptions, memory: tuple[str, float] | None) -> bool:
    enough_memory = memory is None or node.memory_mb is None or memory[1] <= node.memory_mb
    return options.cpus_per_run <= node.cpus and options.gpus_per_run <= node.gpus and enough_memory


def refusal(options: SlurmOptions) -> str | None:
    """``misfit`` against this cluster's ``sinfo``; None where ``sinfo`` cannot tell."""
    text = sinfo_text()
    return misfit(options, parse_sinfo(text)) if text else None


__all__ = ["Node", "gpu_count", "memory_mb", "misfit", "parse_sinfo", "refusal"]
