"""A JSON admin API over a running :class:`FileDropSimulator`.

- ``GET /_sim/stats``, ``GET /_sim/received`` (per envelope id: arrivals and the record)
- ``POST /_sim/faults`` ``{"kind": "down"|"slow"|"refuse"|"unmount", "times": n,
  "delay_s": s, "reason": text}``; ``DELETE /_sim/faults`` (mounted, reading, full speed)
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from simulators.filedrop.system import FileDropSimulator


def create_app(simulator: FileDropSimulator) -> Flask:
    """The admin API of ``simulator`` as a Flask app."""
    app = Flask("filedrop-simulator")

    @app.get("/_sim/stats")
    def stats() -> Response:
        return jsonify(simulator.state.stats())

    @app.get("/_sim/received")
    def received() -> Response:
        return jsonify(simulator.state.received())

    @app.post("/_sim/faults")
    def arm_fault() -> tuple[Response, int]:
        spec: dict[str, Any] = request.get_json(force=True)
        kind = str(spec.get("kind"))
        if kind == "down":
            simulator.set_down(True)
        elif kind == "slow":
            simulator.set_delay(float(spec.get("delay_s", 1.0)))
        elif kind == "refuse":
            simulator.refuse(int(spec.get("times", 1)), spec.get("reason"))
        elif kind == "unmount":
            simulator.unmount()
        else:
            return jsonify({"error": f"unknown fault kind {kind!r}"}), 400
        return jsonify({"armed": kind}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        simulator.clear_faults()
        return jsonify({"faults": 0})

    return app
