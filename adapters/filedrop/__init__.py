"""Old systems that exchange files in shared folders (CSV or fixed-width records)."""
