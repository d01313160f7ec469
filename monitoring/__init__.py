"""What the regional IT centre watches: readiness, message states, and (later) the dashboard."""
