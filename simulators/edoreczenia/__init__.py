"""e-Doręczenia simulator: mailboxes (skrzynki) behind the real UA API contract, on loopback."""
