"""ePUAP pull-service simulator: SOAP skrytki on loopback, fed with synthetic pisma ogólne."""
