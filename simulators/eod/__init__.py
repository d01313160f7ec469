"""A simulated office document-management system (EOD) with a REST registration interface."""
