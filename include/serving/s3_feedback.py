"""Feedback on ``aws``: reward events as JSON lines in S3, read back with the local store's reader API.

Layout under ``<data_root>/endpoint/<endpoint>/``:

```
feedback/rewards/<inference_id>.json      one JSON line per reward event (Athena table feedback_rewards)
capture/<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl   Data Capture: every request and answer (table endpoint_capture)
weights_history.json                      weights generations (include.serving.sagemaker.WeightsHistory)
```

:class:`S3RewardWriter` is what the client side uses after an invocation: the event carries the
inference id, the reward, and the variant and model version from the invocation's answer.  One object
per inference id, written with ``If-None-Match: *``, makes a repeat a no-op and a different reward a
conflict, as the local store does.  (The endpoint is not asked whether the id was served: Data Capture
reaches S3 minutes late.  The Athena view ``feedback_served_rewards`` joins both for audits.)

:class:`S3FeedbackReader` implements :class:`include.serving.feedback.FeedbackReader` by listing S3, not
Athena: the rollout reads a few thousand small objects per round, where an Athena query would add
seconds of latency and a per-query cost, and listing works the same under moto in tests.  Its cursor
is a watermark in epoch milliseconds on S3 ``LastModified`` (whole seconds): each call counts the reward
objects modified after the cursor and at or before ``now - lag`` (default 60 s, far above the time a PUT
takes and the clock skew between the worker and S3), and returns that watermark, so an object is counted
exactly once however late it arrives.  Served counts come from Data Capture the same way (capture files
are new objects, never appended to): one captured request per line, assigned to the weights generation
in force at its ``inferenceTime``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from include.serving.feedback import (
    RewardBatch,
    RewardOutcome,
    ServedBatch,
    ServedCount,
    VariantRewards,
    check_reward,
    utc_now,
)
from include.serving.sagemaker import WeightsHistory
from include.serving.variants import parse_variant_name

if TYPE_CHECKING:
    from botocore.client import BaseClient

REWARDS = "rewards"
DEFAULT_LAG_S = 60.0
_INFERENCE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def feedback_uri(data_root: str, endpoint_name: str) -> str:
    return f"{data_root.rstrip('/')}/endpoint/{endpoint_name}/feedback"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key.rstrip("/")


def _objects(client: BaseClient, uri: str) -> Iterator[dict[str, Any]]:
    """Every object under the prefix ``uri/`` (``Key``, ``LastModified``, …)."""
    bucket, prefix = _split(uri)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        yield from page.get("Contents", [])


class S3RewardWriter:
    """Records reward events under ``<feedback_uri>/rewards/``.

    :param client: a boto3 S3 client.
    :param feedback_uri: :func:`feedback_uri` of the endpoint.
    """

    def __init__(self, client: BaseClient, feedback_uri: str) -> None:
        self.client = client
        self.bucket, self.prefix = _split(feedback_uri)

    def record(self, inference_id: str, reward: object, variant: str, model_version: str) -> RewardOutcome:
        """Write the event once: ``RECORDED``, ``DUPLICATE`` (same reward again) or ``CONFLICT`` (the other reward).

        :raises ValueError: for an inference id that is not 1–128 of ``[A-Za-z0-9_-]`` or a reward not 0/1.
        """
        from botocore.exceptions import ClientError

        if not _INFERENCE_ID.fullmatch(inference_id):
            raise ValueError(f"inference_id: must be 1-128 letters, digits, '-' or '_', got {inference_id!r}")
        value = check_reward(reward)
        parse_variant_name(variant)
        key = f"{self.prefix}/{REWARDS}/{inference_id}.json"
        event = {"inference_id": inference_id, "reward": value, "variant": variant, "model_version": str(model_version),
                 "recorded_at": utc_now()}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=(json.dumps(event) + "\n").encode(),
                                   ContentType="application/x-ndjson", IfNoneMatch="*")
            return RewardOutcome.RECORDED
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
        existing = json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        return RewardOutcome.DUPLICATE if existing["reward"] == value else RewardOutcome.CONFLICT


def _capture_body(capture: dict[str, Any]) -> Any:
    """The JSON value of a captured request or answer (``encoding`` JSON or BASE64)."""
    data = capture.get("data", "")
    if capture.get("encoding") == "BASE64":
        data = base64.b64decode(data)
    return json.loads(data)


class S3FeedbackReader:
    """:class:`include.serving.feedback.FeedbackReader` over reward objects and Data Capture in S3.

    :param client: a boto3 S3 client.
    :param feedback_uri: :func:`feedback_uri` of the endpoint.
    :param capture_uri: the endpoint config's Data Capture destination (``include.serving.sagemaker.capture_uri``).
    :param endpoint_name: the endpoint (Data Capture's first folder level).
    :param history_uri: the endpoint's ``weights_history.json``.
    :param lag_s: how far behind now the watermarks stay.
    :param clock: seconds since the epoch (tests move it).
    """

    def __init__(
        self, client: BaseClient, feedback_uri: str, capture_uri: str, endpoint_name: str, history_uri: str,
        lag_s: float = DEFAULT_LAG_S, clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.feedback_uri = feedback_uri
        self.capture_uri = capture_uri
        self.endpoint_name = endpoint_name
        self.history_uri = history_uri
        self.lag_s = lag_s
        self.clock = clock

    def close(self) -> None:
        """Nothing to release: the S3 client belongs to the caller."""

    def _lines_since(self, uri: str, cursor: int) -> tuple[int, list[tuple[str, str]]]:
        """The watermark, and ``(key, line)`` of every object under ``uri/`` modified in ``(cursor, watermark]``."""
        watermark = int(self.clock() - self.lag_s) * 1000  # whole seconds, like S3's LastModified
        if watermark <= cursor:
            return cursor, []
        bucket, _ = _split(uri)
        lines = []
        for listed in _objects(self.client, uri):
            if cursor < int(listed["LastModified"].timestamp() * 1000) <= watermark:
                body = self.client.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read().decode()
                lines += [(listed["Key"], line) for line in body.splitlines() if line.strip()]
        return watermark, lines

    def rewards_since(self, cursor: int) -> RewardBatch:
        watermark, lines = self._lines_since(f"{self.feedback_uri}/{REWARDS}", cursor)
        tallies: Counter[tuple[str, str, int]] = Counter()
        for _, line in lines:
            event = json.loads(line)
            tallies[(event["variant"], str(event["model_version"]), int(event["reward"]))] += 1
        keys = sorted({(variant, version) for variant, version, _ in tallies})
        return RewardBatch(
            watermark,
            tuple(VariantRewards(variant, version, tallies[(variant, version, 1)], tallies[(variant, version, 0)])
                  for variant, version in keys),
        )

    def _history(self) -> WeightsHistory:
        from botocore.exceptions import ClientError

        bucket, key = _split(self.history_uri)
        try:
            return WeightsHistory.from_json(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return WeightsHistory()
            raise

    def served_since(self, cursor: int) -> ServedBatch:
        """Captured requests in capture files that landed after ``cursor``, by the generation at their ``inferenceTime``."""
        captured = f"{self.capture_uri}/{self.endpoint_name}"
        watermark, lines = self._lines_since(captured, cursor)
        history = self._history() if lines else WeightsHistory()
        prefix = _split(captured)[1]
        requests: Counter[tuple[int, str, str]] = Counter()
        predictions: Counter[tuple[int, str, str]] = Counter()
        for key, line in lines:
            variant = key[len(prefix) + 1 :].split("/", 1)[0]  # <endpoint>/<variant>/yyyy/mm/dd/hh/…
            record = json.loads(line)
            moment = dt.datetime.fromisoformat(record["eventMetadata"]["inferenceTime"].replace("Z", "+00:00"))
            items = _capture_body(record["captureData"]["endpointOutput"]).get("predictions", [])
            group = (history.generation_at(moment), variant,
                     items[0]["model_version"] if items else parse_variant_name(variant)[0])
            requests[group] += 1
            predictions[group] += len(items)
        return ServedBatch(watermark, tuple(ServedCount(*group, requests[group], predictions[group])
                                            for group in sorted(requests)))


def athena_feedback_statements(database: str, data_root: str, endpoint_name: str) -> list[str]:
    """DDL of the Athena tables over the endpoint's reward events and Data Capture, and the view joining them.

    Tables ``endpoint_<name>_rewards`` and ``endpoint_<name>_capture``, view ``endpoint_<name>_served_rewards``
    (SQL in ``include/sql/athena/``); every statement can run again (``IF NOT EXISTS`` / ``OR REPLACE``).
    """
    from include.ingestion.sql import sql_template
    from include.serving.sagemaker import capture_uri

    base = re.sub(r"[^a-z0-9]+", "_", f"endpoint_{endpoint_name}".lower())
    names = {"database": database, "rewards_table": f"{base}_rewards", "capture_table": f"{base}_capture",
             "view": f"{base}_served_rewards"}
    return [
        sql_template("athena/create_feedback_rewards_table").format(
            **names, rewards_location=f"{feedback_uri(data_root, endpoint_name)}/{REWARDS}/"),
        sql_template("athena/create_endpoint_capture_table").format(
            **names, capture_location=f"{capture_uri(data_root, endpoint_name)}/{endpoint_name}/"),
        sql_template("athena/feedback_served_rewards_view").format(**names),
    ]
