"""plait's benchmark harness against plain Python, Agno and LangGraph (see bench/README.md and docs/performance.md)."""
