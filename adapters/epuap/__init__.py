"""ePUAP: the national platform's electronic inboxes (ESP), over its SOAP services."""
