"""A simulated old system that exchanges CSV or fixed-width files through folders."""
