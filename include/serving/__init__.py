"""Model serving: the inference module shared by the local server and a SageMaker endpoint, the local
multi-variant server (SageMaker container contract, admin API, dynamic batching) and the feedback store.

* :mod:`~include.serving.inference` — load a registered model folder, build and tokenize the review text
  exactly as the features stage does, predict; the SageMaker ``model_fn``/``input_fn``/``predict_fn``/``output_fn``.
* :mod:`~include.serving.variants` — variant names, weights validation, endpoint descriptions (both backends).
* :mod:`~include.serving.feedback` — served predictions and rewards in SQLite (local) and the reader API.
* :mod:`~include.serving.s3_feedback` — reward events as JSON lines in S3, Data Capture, Athena DDL (aws).
* :mod:`~include.serving.sagemaker` — SageMaker names, requests, the model archive with the inference code.
* :mod:`~include.serving.state` — the local endpoint's files (variants, server address, admin token).
* :mod:`~include.serving.batching` — dynamic batching of concurrent requests.
* :mod:`~include.serving.app`, :mod:`~include.serving.server` — the local HTTP server.
* :mod:`~include.serving.control` — start/stop/deploy the local server from another process; its HTTP client.
* ``python -m include.serving serve|stop`` — ``make serve`` / ``make stop``.
"""
