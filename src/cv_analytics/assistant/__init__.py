"""The CV assistant: retrieval over the skills catalog (embeddings or BM25), an optional OpenAI-compatible LLM, answers, job-description matching and role summaries."""
