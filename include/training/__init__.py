"""BERT fine-tuning (train.py is a SageMaker source_dir), SageMaker job config, evaluation."""
