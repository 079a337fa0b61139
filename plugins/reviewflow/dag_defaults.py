"""What every reviewflow DAG shares: owner, retries, paging, and the assets that chain them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, AssetAlias, ExceptionRetryPolicy, RetryAction, RetryRule

from include.errors import BadInputError
from include.ingestion.schema import CATEGORY_MAX_LENGTH, CATEGORY_PATTERN
from reviewflow.notifiers import ReviewflowFailureNotifier

# A verdict about the input (missing file, no rows in the requested categories, too many
# rejected rows, a bad parameter or setting) fails the task at once: a retry would give the
# same verdict minutes later. Every other error (network, throttling, a lost worker) is retried.
FAIL_ON_BAD_INPUT = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception=BadInputError, action=RetryAction.FAIL, reason="the input is wrong; retrying cannot fix it")
    ]
)

# The items of a ``categories`` param: a product category name as the data has them; quotes,
# commas and semicolons are refused on the trigger form, before any task runs.
CATEGORY_ITEMS: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": CATEGORY_MAX_LENGTH, "pattern": CATEGORY_PATTERN,
}
CATEGORY_RULE = f"letters, digits, spaces and _ & . - (at most {CATEGORY_MAX_LENGTH} characters)"

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "reviewflow",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "retry_policy": FAIL_ON_BAD_INPUT,
    "on_failure_callback": ReviewflowFailureNotifier(),
}


# Assets are named, not located: each event's ``extra`` carries the snapshot's URI, so the
# same DAGs run against any data root (a laptop folder, a test's tmp dir, S3).
CURATED_REVIEWS = Asset(name="reviewflow_curated_reviews")
# The rollout DAG schedules on the approved model; record_approval emits it through the alias,
# and only for a challenger.
APPROVED_MODEL = Asset(name="reviewflow_approved_model")
APPROVED_MODEL_EVENTS = AssetAlias(name="reviewflow_approved_model_events")
