"""Airflow adapters for reviewflow: hooks (I/O), operators (orchestration), notifiers."""
