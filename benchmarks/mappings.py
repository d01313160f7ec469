"""Mapping throughput: every registered mapping beside bare lxml work on the same input.

For each mapping in ``mappings.MAPPINGS`` it takes the first golden case under
``tests/fixtures/mappings/<name>/`` (its input and context) and measures, in one run:

- ``mappings/s``: ``mappings.apply(name, body, context)``: parse, schema validation where
  the mapping has one, translation, serialisation;
- ``parse+ser/s``: bare lxml on the same body (``etree.fromstring`` then ``etree.tostring``),
  for XML inputs; for JSON inputs, ``json.loads`` then ``json.dumps``;
- ``xslt-noop/s``: a compiled identity stylesheet applied to the parsed input (XML only),
  the floor of any XSLT mapping;
- ``ratio``: mappings/s ÷ parse+ser/s, how many bare parse-and-serialise rounds one mapping
  costs.

Each measurement makes one warm-up call, then counts calls until ``--seconds`` have passed.

    .venv/bin/python benchmarks/mappings.py --seconds 1 [--json]
    .venv/bin/python -m benchmarks.mappings --seconds 1

Benchmarks print figures; they never assert timings. Compare ratios between runs, not the
absolute rates: those depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

if not __package__:
    # Run as a script, this file's folder comes first on sys.path and this file would
    # shadow the `mappings` package it measures.
    sys.path = [
        entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent
    ]

import mappings

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mappings"
IDENTITY = etree.XSLT(
    etree.fromstring(
        b'<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">'
        b'<xsl:template match="/"><xsl:copy-of select="."/></xsl:template>'
        b"</xsl:stylesheet>"
    )
)


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``operation`` over at least ``seconds`` (after one warm-up)."""
    operation()
    count, started = 0, time.perf_counter()
    while True:
        operation()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def first_golden_case(name: str) -> tuple[bytes, dict[str, str]]:
    """The input and context of the mapping's first case that has an expected output."""
    for case in sorted(path for path in (FIXTURES / name).iterdir() if path.is_dir()):
        if (case / "error.json").exists():
            continue
        body = next(case / file for file in ("input.xml", "input.json") if (case / file).exists())
        context_file = case / "context.json"
        context = json.loads(context_file.read_text()) if context_file.exists() else {}
        return body.read_bytes(), context
    raise SystemExit(f"{name} has no golden case under {FIXTURES}")


def measure(name: str, seconds: float) -> dict[str, Any]:
    body, context = first_golden_case(name)
    mapped = rate(lambda: mappings.apply(name, body, context), seconds)
    if mappings.MAPPINGS[name].source_content_type.endswith("json"):
        bare = rate(lambda: json.dumps(json.loads(body)), seconds)
        noop = None
    else:
        bare = rate(lambda: etree.tostring(etree.fromstring(body)), seconds)
        parsed = etree.fromstring(body)
        noop = rate(lambda: IDENTITY(parsed), seconds)
    return {
        "mapping": name,
        "input_bytes": len(body),
        "mappings_per_s": round(mapped),
        "parse_serialize_per_s": round(bare),
        "xslt_noop_per_s": None if noop is None else round(noop),
        "ratio": round(mapped / bare, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    options = parser.parse_args()

    results = [measure(name, options.seconds) for name in sorted(mappings.MAPPINGS)]
    columns = ("bytes", 7), ("mappings/s", 11), ("parse+ser/s", 12), ("xslt-noop/s", 12)
    header = " ".join(f"{title:>{width}}" for title, width in columns)
    print(f"{'mapping':42} {header} {'ratio':>6}")
    for result in results:
        noop = "-" if result["xslt_noop_per_s"] is None else str(result["xslt_noop_per_s"])
        print(
            f"{result['mapping']:42} {result['input_bytes']:>7} {result['mappings_per_s']:>11} "
            f"{result['parse_serialize_per_s']:>12} {noop:>12} {result['ratio']:>6}"
        )
    if options.json:
        print(json.dumps({"mappings": results}))


if __name__ == "__main__":
    main()
