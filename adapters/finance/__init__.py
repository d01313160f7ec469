"""The offices' finance system (system finansowo-księgowy), reached over SOAP."""
