"""Runnable host apps that mount the gateway under `/llm`; see examples/README.md."""
