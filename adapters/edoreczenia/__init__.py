"""e-Doręczenia: the national registered electronic delivery service (PURDE), over its UA API."""
