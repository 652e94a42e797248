"""Grounded Korean/English Q&A over news articles."""

from __future__ import annotations

__version__ = "0.1.0"

