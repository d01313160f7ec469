"""Keys, certificates and signatures: the office identities the hub signs with."""
