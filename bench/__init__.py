"""Benchmarks that print our figure beside the anchors' (pgqueuer, a raw asyncpg loop)."""
