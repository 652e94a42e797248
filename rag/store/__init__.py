"""Store: the index (FAISS folder or Milvus), BM25, sentence and term vectors."""
