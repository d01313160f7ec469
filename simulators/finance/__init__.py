"""A simulated finance system (system finansowo-księgowy) behind its SOAP interface."""
