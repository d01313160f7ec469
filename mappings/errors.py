"""The one error a mapping raises.

Mappings import nothing of the hub, so this is their own exception; the routing layer
translates it into ``hub.errors.MappingError`` (dead letter) at the ``apply_mapping`` step.
"""

from __future__ import annotations


class MappingError(Exception):
    """A document could not be translated: it is malformed, of the wrong type, or incomplete.

    Attributes:
        reason: what is wrong, in words a clerk can act on.
        path: where in the source document, as ``/Root/Child[2]/Leaf`` with local names
            (``$.key[0]`` for JSON; empty when the whole document is at fault).
    """

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{reason} (at {path})" if path else reason)
        self.reason = reason
        self.path = path
