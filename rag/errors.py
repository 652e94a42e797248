"""Domain errors of the rag library.

Every message names the file, field or value at fault and, where there is one,
the fix. Only ``rag.cli`` turns these into exit codes; library code raises.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: a user-facing problem with a readable message."""


class CorpusError(RagError):
    """An article file or JSONL record could not be read."""


class IndexStoreError(RagError):
    """The on-disk index is missing, damaged or built with other settings."""


class ModelError(RagError):
    """The embedding model cannot be found, built or loaded."""


class LLMError(RagError):
    """The optional LLM endpoint failed (timeout, connection, bad reply)."""
