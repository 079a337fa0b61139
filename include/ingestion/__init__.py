"""Ingestion of raw Amazon Customer Reviews files into curated, partitioned Parquet."""
