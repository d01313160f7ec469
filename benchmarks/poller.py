"""A sweep of a region's ePUAP mailboxes: one after another with keys loaded every round,
beside the poller's way (a bounded pool, keys kept for the process), in the same run.

N offices, each with its own test key (``init_test_pki`` in a temporary folder) and its
own mailbox in the ePUAP simulator, run as ``hub demo`` runs it (its own process, under
gunicorn, ``--keystore``: WS-Security required on every call, answers signed). Before
each round D generated pisma ogólne are put into every mailbox (not timed); then one
sweep (``EpuapPullInbound.poll_once``) takes them all: per mailbox ``oczekujaceDokumenty``,
then per document ``pobierzNastepny`` → store (a fresh SQLite file, or a new PostgreSQL
database) → ``potwierdzOdebranie``, every call signed with the office's key.

Ways, each over the same mailboxes and rounds:

- ``sequential, keys per round``: what the poller did before: one mailbox at a time, and
  every office's key (with its WS-Security signer) loaded again in every round (the key
  files are touched before the round, so the keystore reads them anew);
- ``sequential, keys kept``: one mailbox at a time, keys loaded once;
- ``parallel, keys per round``: ``--concurrency`` mailboxes at a time, keys every round;
- ``parallel, keys kept``: the poller now: ``--concurrency`` at a time, keys loaded once.

Each way has one channel (its zeep clients, one per pool thread, made in its first
round) and one keystore for all its rounds.

Printed per way: the first round's seconds (keys loaded then in every way), the median of
the later rounds (wall seconds, and the CPU seconds of this process, the poller's side,
which other load on the machine disturbs less), documents/s over the later rounds, one
empty sweep (nothing waiting: the cost of asking every mailbox), and how many times keys
were read from disk.
Every document must be stored exactly once, or the script fails. Figures only, never
asserted; compare the ratios, not the seconds (they depend on the machine).

    .venv/bin/python benchmarks/poller.py [--mailboxes 50] [--documents 2] [--rounds 3]
        [--concurrency 8] [--database sqlite|postgresql] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
import requests
from sqlalchemy import func, select

from adapters.epuap.inbound import EpuapPullInbound
from hub.inbound import accept_into
from hub.logging import configure_logging
from hub.region import load_region
from hub.settings import Settings
from hub.signing.keystore import Keystore, init_test_pki
from hub.store.migrate import upgrade_database
from hub.store.models import MessageRow
from hub.store.repository import Store
from simulators.processes import ChildProcess, start_simulator

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432"


@dataclass(frozen=True)
class Way:
    """One way of sweeping: how many mailboxes at a time, and whether keys are kept."""

    name: str
    concurrency: int
    keys_kept: bool


@dataclass
class Figures:
    """What one way measured."""

    way: str
    concurrency: int
    first_round_s: float
    later_round_s: float
    later_round_cpu_s: float
    later_docs_per_s: float
    empty_sweep_s: float
    empty_sweep_cpu_s: float
    key_loads: int
    documents: int


def office_ids(count: int) -> list[str]:
    return [f"9{n:05d}_1" for n in range(count)]


def region_text(epuap_url: str, offices: list[str]) -> str:
    lines = ['[region]\nname = "poller benchmark"\n']
    lines += [
        f'[[offices]]\nid = "{office}"\nname = "Urząd {office}"\nesp = "/{office}/skrytka"\n'
        for office in offices
    ]
    lines.append(
        f'[[inbound]]\nname = "epuap"\nkind = "epuap-pull"\n'
        f'url = "{epuap_url}/pk_external_ws/services/pull"\nws_security = true\n'
    )
    return "\n".join(lines)


def enqueue(epuap_url: str, offices: list[str], per_office: int) -> int:
    mailboxes = [
        {
            "address": f"/{office}/skrytka",
            "office_name": f"Urząd {office}",
            "office_teryt": office.replace("_", ""),
            "count": per_office,
        }
        for office in offices
    ]
    answer = requests.post(
        f"{epuap_url}/_sim/documents",
        json={"mailboxes": mailboxes, "attachments": 1},
        timeout=60,
    )
    answer.raise_for_status()
    return int(answer.json()["enqueued"])


def channel(settings: Settings, keystore: Keystore) -> EpuapPullInbound:
    region = load_region(settings.region_path)
    made = EpuapPullInbound(region.inbound[0], region, settings, keystore=keystore)
    made.setup()
    return made


@dataclass(frozen=True)
class Sweep:
    """One round: wall seconds, this process's CPU seconds, documents taken."""

    seconds: float
    cpu_s: float
    taken: int


def timed_sweep(pull: EpuapPullInbound, store: Store) -> Sweep:
    started, cpu_started = time.perf_counter(), time.process_time()
    taken = pull.poll_once(accept_into(store))
    return Sweep(time.perf_counter() - started, time.process_time() - cpu_started, taken)


def measure(
    way: Way, settings: Settings, store: Store, epuap_url: str, arguments: argparse.Namespace
) -> Figures:
    """Sweep ``arguments.rounds`` rounds of documents, then one empty round, in ``way``."""
    settings = settings.replace(poll_concurrency=way.concurrency)
    offices = office_ids(arguments.mailboxes)
    keystore = Keystore(settings.keys, settings.keystore_password)
    pull = channel(settings, keystore)
    rounds: list[Sweep] = []
    try:
        for number in range(arguments.rounds + 1):
            if number < arguments.rounds:
                enqueue(epuap_url, offices, arguments.documents)
            if not way.keys_kept and number > 0:
                touch_keys(settings.keys, offices)
            rounds.append(timed_sweep(pull, store))
    finally:
        pull.stop()
    later = rounds[1:-1] or rounds[:1]
    return Figures(
        way=way.name,
        concurrency=way.concurrency,
        first_round_s=rounds[0].seconds,
        later_round_s=statistics.median(sweep.seconds for sweep in later),
        later_round_cpu_s=statistics.median(sweep.cpu_s for sweep in later),
        later_docs_per_s=sum(sweep.taken for sweep in later)
        / sum(sweep.seconds for sweep in later),
        empty_sweep_s=rounds[-1].seconds,
        empty_sweep_cpu_s=rounds[-1].cpu_s,
        key_loads=sum(keystore.loads().values()),
        documents=sum(sweep.taken for sweep in rounds),
    )


def touch_keys(keys: Path, offices: list[str]) -> None:
    """Give every office's key files a new time, so the keystore reads each key again.

    That is the "keys per round" ways: the same channel and clients, every key (and its
    WS-Security signer) loaded anew in the round, as the poller did before.
    """
    moment = time.time_ns()
    for office in offices:
        for suffix in (".pem", ".key.pem"):
            os.utime(keys / f"{office}{suffix}", ns=(moment, moment))


@contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'hub.db'}"
        return
    name = f"hub_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_BASE}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def stored(store: Store) -> int:
    with store.reading() as connection:
        count = connection.scalar(select(func.count()).select_from(MessageRow.__table__))
    return int(count or 0)


def run(arguments: argparse.Namespace, folder: Path) -> list[Figures]:
    offices = office_ids(arguments.mailboxes)
    started = time.perf_counter()
    init_test_pki(
        folder / "keys",
        folder / "trust",
        ["epuap", *offices],
        ca_dir=folder / "ca",
        platforms_dir=folder / "platforms",
    )
    print(f"keys for {len(offices)} offices made in {time.perf_counter() - started:.1f} s")
    simulator: ChildProcess
    simulator, epuap_url = start_simulator(
        "simulators.epuap", "--keystore", str(folder / "platforms")
    )
    try:
        (folder / "region.toml").write_text(region_text(epuap_url, offices), encoding="utf-8")
        with database(arguments.database, folder) as url:
            region_path = folder / "region.toml"
            settings = Settings(var_dir=folder, database_url=url, region_path=region_path)
            upgrade_database(settings)
            store = Store.from_url(url)
            try:
                return sweep_every_way(arguments, settings, store, epuap_url)
            finally:
                store.close()
    finally:
        simulator.stop()


def sweep_every_way(
    arguments: argparse.Namespace, settings: Settings, store: Store, epuap_url: str
) -> list[Figures]:
    ways = [
        Way("sequential, keys per round", 1, keys_kept=False),
        Way("sequential, keys kept", 1, keys_kept=True),
        Way("parallel, keys per round", arguments.concurrency, keys_kept=False),
        Way("parallel, keys kept", arguments.concurrency, keys_kept=True),
    ]
    results = []
    expected = 0
    for way in ways:
        figures = measure(way, settings, store, epuap_url, arguments)
        expected += arguments.rounds * arguments.mailboxes * arguments.documents
        if figures.documents != arguments.rounds * arguments.mailboxes * arguments.documents:
            sys.exit(f"{way.name}: swept {figures.documents} documents, not every one once")
        results.append(figures)
    if stored(store) != expected:
        sys.exit(f"the store holds {stored(store)} documents, not the {expected} put in")
    return results


def report(results: list[Figures], arguments: argparse.Namespace) -> None:
    print(
        f"{arguments.mailboxes} mailboxes x {arguments.documents} documents, "
        f"{arguments.rounds} rounds, {arguments.database}"
    )
    print(
        f"{'way':28} {'conc':>4} {'1st s':>7} {'later s':>8} {'cpu s':>6} {'docs/s':>7} "
        f"{'empty s':>8} {'cpu s':>6} {'key loads':>9}"
    )
    for figures in results:
        print(
            f"{figures.way:28} {figures.concurrency:4d} {figures.first_round_s:7.2f} "
            f"{figures.later_round_s:8.2f} {figures.later_round_cpu_s:6.2f} "
            f"{figures.later_docs_per_s:7.1f} {figures.empty_sweep_s:8.2f} "
            f"{figures.empty_sweep_cpu_s:6.2f} {figures.key_loads:9d}"
        )
    before, after = results[0], results[-1]
    print(
        f"{before.way} -> {after.way}: later rounds {ratio(before, after, 'later_round_s')} "
        f"the time, {ratio(before, after, 'later_round_cpu_s')} the poller's CPU; empty sweep "
        f"{ratio(before, after, 'empty_sweep_s')} the time, "
        f"{ratio(before, after, 'empty_sweep_cpu_s')} the CPU"
    )
    if arguments.json:
        print(json.dumps({"arguments": vars(arguments), "ways": [asdict(r) for r in results]}))


def ratio(before: Figures, after: Figures, name: str) -> str:
    """How much of ``before``'s figure ``after`` needs, e.g. ``1/3.2``."""
    value, base = getattr(after, name), getattr(before, name)
    return f"1/{base / value:.1f}" if value > 0 else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--documents", type=int, default=2, help="per mailbox and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=Settings().poll_concurrency)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    arguments = parser.parse_args()
    # The figures are the output: the hub's per-document lines would bury them.
    configure_logging(Settings(log_level="warning"))
    with tempfile.TemporaryDirectory(prefix="bench-poller-") as folder:
        report(run(arguments, Path(folder)), arguments)


if __name__ == "__main__":
    main()
