"""The relay and the poller on two hub hosts: one of each works, the other takes over.

Two ``hub relay`` and two ``hub poll`` processes run against one database (SQLite and
PostgreSQL) and the broker, as on two machines of a region. Each pair shares a lease in
the database: only its holder publishes the outbox or pulls ePUAP. The test proves it by
what a second worker would leave behind (an ePUAP document served twice, an outbox row
published twice), then SIGKILLs both holders, which cannot give their leases up: the
standbys take over once the leases run out, and the documents that arrive meanwhile are
pulled, published and delivered once each.
"""

from __future__ import annotations

import socket
import time

from process_support import hub_processes, lease_holder, wait_for

from hub.poller import POLLER_LOCK
from hub.relay import RELAY_LOCK

LEASE_S = 3.0
# A standby looks at the lease every third of it (the relay) or every poll interval (the
# poller); on a loaded machine give it a few leases before calling it stuck.
TAKEOVER_TIMEOUT_S = LEASE_S * 6
SETTLE_TIMEOUT_S = 90.0


def holder_name(pid: int) -> str:
    """The lease holder name a hub process on this host uses (``host:pid``)."""
    return f"{socket.gethostname()}:{pid}"


def test_two_relays_and_two_pollers_work_one_at_a_time_and_standbys_take_over_from_killed_holders(
    hub, eod, epuap, enqueue_filings, tmp_path
):
    settings = hub.settings.replace(singleton_lease_s=LEASE_S, poll_interval_s=0.2)
    accepted_queue = hub.topology.accepted_queue

    def settled_in_outbox(count: int) -> bool:
        return len(hub.messages()) == count and hub.store.count_unsent_outbox() == 0

    with hub_processes(settings, tmp_path / "logs") as processes:
        relays = [processes.start(f"relay-{n}", "relay") for n in (1, 2)]
        pollers = [processes.start(f"poller-{n}", "poll") for n in (1, 2)]

        # No worker yet: the accepted queue keeps every message the relays published.
        first = enqueue_filings(10)
        wait_for(lambda: settled_in_outbox(first), SETTLE_TIMEOUT_S, f"{first} documents relayed")
        assert epuap.admin("GET", "/_sim/stats")["served"] == first, processes.logs()
        assert hub.queue_depth(accepted_queue) == first, processes.logs()

        relay_holder = lease_holder(hub.store, RELAY_LOCK)
        poller_holder = lease_holder(hub.store, POLLER_LOCK)
        assert relay_holder in {holder_name(child.process.pid) for child in relays}
        assert poller_holder in {holder_name(child.process.pid) for child in pollers}
        killed_relay = processes.by_holder(relay_holder)
        killed_poller = processes.by_holder(poller_holder)
        standby_relay = next(child for child in relays if child is not killed_relay)
        standby_poller = next(child for child in pollers if child is not killed_poller)

        # SIGKILL: the holders cannot release their leases; they must run out.
        killed_relay.kill()
        killed_poller.kill()
        killed_at = time.monotonic()
        second = enqueue_filings(10)
        takeover_s = {}
        for lock, standby in ((RELAY_LOCK, standby_relay), (POLLER_LOCK, standby_poller)):
            wait_for(
                lambda lock=lock, standby=standby: (
                    lease_holder(hub.store, lock) == holder_name(standby.process.pid)
                ),
                TAKEOVER_TIMEOUT_S,
                f"the standby to take the lease {lock}",
            )
            takeover_s[lock] = round(time.monotonic() - killed_at, 1)
        # A figure for the report, never asserted (pytest -s shows it).
        print(f"takeover after SIGKILL, lease {LEASE_S} s: {takeover_s}")

        total = first + second
        wait_for(lambda: settled_in_outbox(total), SETTLE_TIMEOUT_S, f"{total} documents relayed")
        assert epuap.admin("GET", "/_sim/stats")["served"] == total, processes.logs()
        assert hub.queue_depth(accepted_queue) == total, processes.logs()
        assert standby_relay.alive()
        assert standby_poller.alive()

        hub.start_worker()
        messages = hub.wait_until_settled(total, timeout_s=SETTLE_TIMEOUT_S)

    assert {row.status for row in messages} == {"delivered"}
    arrivals = eod.admin("GET", "/_sim/received")
    assert set(arrivals) == {row.id for row in messages}
    assert all(entry["count"] == 1 for entry in arrivals.values())
    assert eod.admin("GET", "/_sim/stats")["registered"] == total
