"""The one base class of errors that are verdicts about the input, not faults of the moment."""

from __future__ import annotations


class BadInputError(ValueError):
    """The task's input (a file, its rows, a parameter or a setting) is wrong.

    Running the same task again on the same input gives the same verdict, so Airflow fails the
    task at once instead of retrying it (see ``retry_policy`` in ``reviewflow.dag_defaults``);
    the message names what to correct. Transient faults (network, throttling, a lost worker)
    are other exception types and keep their retries.
    """
