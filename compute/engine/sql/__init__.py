"""The SQL dialect over models (see weights.py; the core wires the package)."""
