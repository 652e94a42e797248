"""Search: hybrid retrieval, fusion, time filters and retrieval metrics."""
