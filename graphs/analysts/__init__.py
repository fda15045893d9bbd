"""The minds behind the nodes: an offline analyst that reasons in SQL, and an LLM analyst."""
