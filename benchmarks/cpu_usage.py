"""What a run costs the machine's processors, read from ``/proc`` (Linux only).

Two views of the same window:

- the whole machine: busy jiffies of the ``cpu`` line of ``/proc/stat`` (user, nice,
  system, irq, softirq, steal; idle and iowait left out), so everything a document makes
  run (the broker, PostgreSQL, the EOD simulator, the hub's or the peer's processes)
  counts, and so does anything else running on the machine at the time;
- per process: ``utime + stime`` of ``/proc/<pid>/stat`` (all threads of a process),
  grouped by the run's own children and their descendants, the broker (``beam.smp``
  and its helpers) and PostgreSQL (every ``postgres`` process). What no group holds
  (other work on the machine, processes that ended inside the window) is ``other``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# Fields of the ``cpu`` line of /proc/stat, in order; guest time is already in user.
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
BROKER_COMMANDS = ("beam.smp", "erl_child_setup", "inet_gethost", "epmd")
POSTGRES_COMMAND_PREFIX = "postgres"


@dataclass(frozen=True)
class ProcessTimes:
    """One process as ``/proc/<pid>/stat`` shows it: its name, parent and CPU jiffies."""

    command: str
    parent: int
    jiffies: int


@dataclass(frozen=True)
class CpuSnapshot:
    """The machine's busy jiffies and every process's own, at one moment."""

    busy_jiffies: int
    processes: dict[int, ProcessTimes] = field(default_factory=dict)


def machine_busy_jiffies() -> int:
    """Busy jiffies of all processors since boot (the ``cpu`` line of ``/proc/stat``)."""
    first_line = (PROC / "stat").read_text().splitlines()[0].split()
    values = dict(zip(STAT_FIELDS, (int(value) for value in first_line[1:]), strict=False))
    return sum(values.get(name, 0) for name in BUSY_FIELDS)


def process_times(pid: int) -> ProcessTimes | None:
    """``pid``'s name, parent and utime + stime, or None if it has gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command is in parentheses and may itself hold spaces or parentheses.
    command = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # After the command: state(0) ppid(1) ... utime(11) stime(12).
    return ProcessTimes(command, int(fields[1]), int(fields[11]) + int(fields[12]))


def snapshot() -> CpuSnapshot:
    """The machine's busy jiffies and every process's CPU, now."""
    busy = machine_busy_jiffies()
    processes: dict[int, ProcessTimes] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            times = process_times(int(entry.name))
            if times is not None:
                processes[int(entry.name)] = times
    return CpuSnapshot(busy, processes)


def jiffies_to_ms(jiffies: float) -> float:
    """Milliseconds of processor time in ``jiffies`` clock ticks."""
    return jiffies * 1000 / CLOCK_TICKS_PER_S


def busy_ms_between(start: CpuSnapshot, end: CpuSnapshot) -> float:
    """Processor milliseconds the whole machine spent busy between two snapshots."""
    return jiffies_to_ms(end.busy_jiffies - start.busy_jiffies)


def descendants(roots: Iterable[int], processes: Mapping[int, ProcessTimes]) -> set[int]:
    """``roots`` and every process below them, as ``processes`` knows their parents."""
    children: dict[int, list[int]] = {}
    for pid, times in processes.items():
        children.setdefault(times.parent, []).append(pid)
    found: set[int] = set()
    pending = [root for root in roots if root in processes]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, []))
    return found


def cpu_by_group(
    start: CpuSnapshot, end: CpuSnapshot, roots: Mapping[str, Iterable[int]]
) -> dict[str, float]:
    """Processor ms per group of processes between two snapshots, plus ``other``.

    Args:
        start: taken at the start of the window.
        end: taken at its end, while the groups' processes still run.
        roots: group name → the pids it starts from; their descendants join it unless
            an earlier group holds them.

    Returns:
        Milliseconds per group, then ``broker``, ``postgresql`` and ``other`` (the
        machine's busy time that no group accounts for).
    """
    groups: dict[str, set[int]] = {}
    claimed: set[int] = set()
    # In the order given: a later group (the benchmark's own process) does not take
    # what an earlier one (its children) already holds.
    for name, pids in roots.items():
        groups[name] = descendants(pids, end.processes) - claimed
        claimed |= groups[name]
    broker = {pid for pid, t in end.processes.items() if t.command in BROKER_COMMANDS}
    groups["broker"] = descendants(broker, end.processes) - claimed
    groups["postgresql"] = {
        pid
        for pid, times in end.processes.items()
        if times.command.startswith(POSTGRES_COMMAND_PREFIX) and pid not in claimed
    }
    spent = {name: _spent_ms(pids, start, end) for name, pids in groups.items()}
    spent["other"] = busy_ms_between(start, end) - sum(spent.values())
    return {name: round(value, 1) for name, value in spent.items()}


def _spent_ms(pids: Iterable[int], start: CpuSnapshot, end: CpuSnapshot) -> float:
    total = 0
    for pid in pids:
        before = start.processes.get(pid)
        after = end.processes[pid]
        # A pid first seen at the end started inside the window; a reused pid (another
        # command than at the start) likewise.
        same = before is not None and before.command == after.command
        total += after.jiffies - (before.jiffies if same and before else 0)
    return jiffies_to_ms(total)


@dataclass(frozen=True)
class RunCpu:
    """What one run cost the processors, per document and per group of processes."""

    busy_ms: float
    cpu_ms_per_doc: float
    steady_cpu_ms_per_doc: float | None
    # The same, counting only the run's processes, the broker and PostgreSQL (no other).
    steady_run_cpu_ms_per_doc: float | None
    by_process_ms: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """The figures as a JSON-ready dict."""
        return {
            "busy_ms": self.busy_ms,
            "cpu_ms_per_doc": self.cpu_ms_per_doc,
            "steady_cpu_ms_per_doc": self.steady_cpu_ms_per_doc,
            "steady_run_cpu_ms_per_doc": self.steady_run_cpu_ms_per_doc,
            "by_process_ms": self.by_process_ms,
        }


def attributed_ms(by_group: Mapping[str, float]) -> float:
    """The milliseconds the named groups account for: all but ``other``."""
    return sum(ms for name, ms in by_group.items() if name != "other")


@dataclass
class RunCpuProbe:
    """Snapshots at a run's start, when its first delivery is seen, and at its end.

    Between the first delivery and the end the run is steady: its processes have
    started, and the ``steady`` figures divide that window's CPU by the documents
    delivered in it, as the steady docs/s does.

    The run calls ``started`` just before it launches its processes, ``polled`` at each
    look at its progress, and ``finished`` once everything is delivered, while its
    processes still run (their CPU is read from ``/proc`` then).
    """

    start: CpuSnapshot | None = None
    first: CpuSnapshot | None = None
    first_delivered: int = 0
    end: CpuSnapshot | None = None
    children: dict[str, list[int]] = field(default_factory=dict)

    def started(self) -> None:
        """Mark the start of the window."""
        self.start = snapshot()

    def polled(self, delivered: int) -> None:
        """Mark the first moment any document is seen delivered (once)."""
        if self.first is None and delivered > 0:
            self.first = snapshot()
            self.first_delivered = delivered

    def finished(self, children: Mapping[str, int]) -> None:
        """Mark the end of the window; ``children`` maps a name to each child's pid."""
        self.end = snapshot()
        self.children = {name: [pid] for name, pid in children.items()}

    def figures(self, documents: int) -> RunCpu:
        """The window's CPU: per document, from the first delivery on, and per process."""
        assert self.start is not None, "the run did not start"
        assert self.end is not None, "the run did not finish"
        busy_ms = busy_ms_between(self.start, self.end)
        roots = {**self.children, "benchmark": [os.getpid()]}
        steady = steady_run = None
        after_first = documents - self.first_delivered
        if self.first is not None and after_first > 0:
            steady = round(busy_ms_between(self.first, self.end) / after_first, 2)
            run_ms = attributed_ms(cpu_by_group(self.first, self.end, roots))
            steady_run = round(run_ms / after_first, 2)
        return RunCpu(
            busy_ms=round(busy_ms, 1),
            cpu_ms_per_doc=round(busy_ms / max(documents, 1), 2),
            steady_cpu_ms_per_doc=steady,
            steady_run_cpu_ms_per_doc=steady_run,
            by_process_ms=cpu_by_group(self.start, self.end, roots),
        )
