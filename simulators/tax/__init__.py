"""A simulated local-tax system (podatki i opłaty lokalne) with a REST/JSON interface."""
