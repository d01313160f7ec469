"""EOD/EZD: an office's document-management system, where filings are registered."""
