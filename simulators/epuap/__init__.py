"""ePUAP simulator: the pull, skrytka and doręczyciel SOAP services on loopback, with UPP/UPD."""
