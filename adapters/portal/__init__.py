"""The regional portal: what citizens see of the hub (the service catalogue, for a start)."""
