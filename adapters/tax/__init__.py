"""The offices' local-tax systems, reached over REST/JSON."""
