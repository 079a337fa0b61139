"""BERT fine-tuning (``sourcedir/``: train.py and the finetune package, a SageMaker source_dir), job config, evaluation."""
