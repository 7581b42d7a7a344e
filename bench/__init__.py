"""plait's benchmark harness against plain Python, Agno and LangGraph (see README.md)."""
