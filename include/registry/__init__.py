"""Model registry: one interface (versions, approval status, aliases, lineage), MLflow or SageMaker behind it."""
