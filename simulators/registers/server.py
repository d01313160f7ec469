"""A JSON admin API over a running :class:`RegisterSimulator`, like the HTTP simulators'.

- ``GET /_sim/stats``, ``GET /_sim/received`` (per message id: arrivals and the one record)
- ``POST /_sim/faults`` ``{"kind": "down"|"slow"|"refuse"|"crash", "times": n,
  "delay_s": s, "reason": text}``; ``DELETE /_sim/faults`` (back up, full speed)
- ``POST /_sim/status`` ``{"envelope_id": ..., "status": ...}``: announce a status change
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from simulators.registers.peer import Fault, FaultKind, RegisterSimulator


def create_app(simulator: RegisterSimulator) -> Flask:
    """The admin API of ``simulator`` as a Flask app."""
    app = Flask("registers-simulator")

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
        elif kind in {FaultKind.REFUSE.value, FaultKind.CRASH.value}:
            times = spec.get("times")
            fault = Fault(FaultKind(kind), None if times is None else int(times))
            if spec.get("reason"):
                fault.reason = str(spec["reason"])
            simulator.arm(fault)
        else:
            return jsonify({"error": f"unknown fault kind {kind!r}"}), 400
        return jsonify({"armed": kind}), 201

    @app.delete("/_sim/faults")
    def clear_faults() -> Response:
        simulator.clear_faults()
        return jsonify({"faults": 0})

    @app.post("/_sim/status")
    def report_status() -> tuple[Response, int]:
        spec: dict[str, Any] = request.get_json(force=True)
        simulator.report_status(str(spec["envelope_id"]), str(spec["status"]))
        return jsonify({"queued": True}), 202

    return app
