"""Pure document translations, one module (or XSLT file) per source -> target.

Mappings import lxml only: no I/O, no settings, no logging, so each is tested by golden
files alone. The first ones (pismo ogólne -> EOD registration record, tax declarations,
permits, invoices) come with the region's legacy systems.
"""
