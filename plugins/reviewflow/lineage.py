"""OpenLineage reporting for the custom operators, through Airflow's OpenLineage provider.

An operator records what it read and wrote while it runs (:meth:`ReportsLineage.report_lineage`,
names from :mod:`include.lineage_datasets`); the provider's listener calls
``get_openlineage_facets_on_complete`` when the task succeeds and sends the datasets to the
configured transport (locally, the file transport under the data root; see the Makefile).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Names = tuple[str, str]


class ReportsLineage:
    """Mixin: the datasets this try read and wrote, as OpenLineage inputs and outputs on completion."""

    def report_lineage(self, inputs: Iterable[Names], outputs: Iterable[Names]) -> None:
        """Record (namespace, name) pairs read and written by this try (a resumed deferral records again)."""
        self._lineage = (list(inputs), list(outputs))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow.providers.common.compat.openlineage.facet import Dataset
        from airflow.providers.openlineage.extractors import OperatorLineage

        inputs, outputs = getattr(self, "_lineage", ([], []))
        return OperatorLineage(
            inputs=[Dataset(namespace=ns, name=name) for ns, name in inputs],
            outputs=[Dataset(namespace=ns, name=name) for ns, name in outputs],
        )
