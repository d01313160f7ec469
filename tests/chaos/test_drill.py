"""The fault drill at CI size: broker cut, worker SIGKILLed, database and EOD away, duplicates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import psycopg


def test_the_drill_loses_nothing_and_doubles_nothing(tmp_path):
    database = f"hub_drill_{uuid.uuid4().hex[:8]}"
    try:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "hub",
                "drill",
                "--documents",
                "300",
                "--offices",
                "3",
                "--duplicates",
                "30",
                "--broker",
                "cut",
                "--broker-outage-s",
                "3",
                "--database-outage-s",
                "8",
                "--destination-outage-s",
                "15",
                "--database-url",
                f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}",
                "--timeout-s",
                "600",
                "--json",
            ],
            env={**os.environ, "HUB_VAR_DIR": str(tmp_path), "HUB_QUEUE_PREFIX": database},
            capture_output=True,
            check=False,
            timeout=900,
            cwd=tmp_path,
        )
    finally:
        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
        ) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    output = finished.stdout.decode()
    assert finished.returncode == 0, output + finished.stderr.decode()[-3000:]
    figures = json.loads(output.strip().splitlines()[-1])

    assert (figures["documents"], figures["lost"], figures["doubled"]) == (300, 0, 0)
    assert figures["delivered_once"] == 300
    faults = " ".join(what for _, what in figures["timeline"])
    for fault in ("(a)", "(b)", "(c)", "(d)", "(e)"):
        assert fault in faults, f"fault {fault} did not happen: {figures['timeline']}"
    # The faults hit a moving flow: deliveries were refused by the EOD and retried.
    assert figures["attempts_by_outcome"].get("retry", 0) > 0
    assert figures["served_again_by_epuap"] > 0
