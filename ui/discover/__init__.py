"""Discover: search results, a repository's quant table with fit badges, the memory chart."""
