"""The integration hub: store-and-forward routing with evidence for regional e-government."""
