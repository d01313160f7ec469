"""The regional portal's side of the hub: the service catalogue and the citizens' cases."""
