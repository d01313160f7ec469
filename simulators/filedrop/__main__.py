"""``python -m simulators.filedrop --root DIR --office O ...``: run an old file-exchange system.

Reads ``DIR/<office>/in`` and answers into ``DIR/<office>/out`` for each ``--office``
(the hub's defaults for an endpoint ``url = "file://DIR/{office}"``), and serves its
admin API on ``--port``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from simulators.filedrop.server import create_app
from simulators.filedrop.system import Exchange, FileDropSimulator
from simulators.serving import loopback_server


def main() -> None:
    """Read and answer until SIGTERM; print the admin address once listening."""
    parser = argparse.ArgumentParser(description="old file-exchange system simulator")
    parser.add_argument("--root", type=Path, required=True, help="the systems' folder root")
    parser.add_argument("--office", action="append", required=True, help="TERYT id; repeatable")
    parser.add_argument("--format", choices=["csv", "fixed-width"], default="csv")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8096)
    arguments = parser.parse_args()
    exchanges = [
        Exchange(arguments.root / office / "in", arguments.root / office / "out", arguments.format)
        for office in arguments.office
    ]
    simulator = FileDropSimulator(exchanges)
    # The admin API runs in this process, beside the system's thread (gunicorn would
    # fork it away from the thread); it answers a handful of test calls, not traffic.
    server = loopback_server(create_app(simulator), arguments.host, arguments.port)
    signal.signal(signal.SIGTERM, _exit)
    simulator.start()
    print(f"filedrop simulator listening on http://{arguments.host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        simulator.stop()


def _exit(_signum: int, _frame: FrameType | None) -> None:
    sys.exit(0)


if __name__ == "__main__":
    main()
