"""The regional portal's side of the hub: what citizens and businesses see of their cases."""
