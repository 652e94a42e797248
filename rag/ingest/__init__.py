"""Ingest: files and feeds -> clean `Document`s -> passages (corpus, HTML, dates, chunking, feeds)."""
