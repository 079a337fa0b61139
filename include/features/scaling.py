"""Min-max scaling of numeric review features, fitted on the train split only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame

SCALED_FEATURES: tuple[str, ...] = ("helpful_votes", "total_votes", "review_length")


@dataclass(frozen=True)
class MinMaxScaler:
    """``(x - min) / (max - min)`` per feature; a constant feature scales to 0.

    Values outside the fitted range (in validation, test or replay) are not clipped.

    :param minimum: per-feature minimum seen in the fitting rows.
    :param maximum: per-feature maximum seen in the fitting rows.
    :param fitted_rows: how many rows the scaler was fitted on.
    """

    minimum: dict[str, float]
    maximum: dict[str, float]
    fitted_rows: int

    @classmethod
    def fit(cls, frame: DataFrame, features: tuple[str, ...] = SCALED_FEATURES) -> MinMaxScaler:
        """Fit on every row of ``frame`` (pass the train split only).

        :raises ValueError: if ``frame`` has no rows.
        """
        from pyspark.sql import functions as F

        aggregates = [F.count(F.lit(1)).alias("rows")]
        for name in features:
            aggregates += [F.min(name).cast("double").alias(f"min_{name}"), F.max(name).cast("double").alias(f"max_{name}")]
        row = frame.agg(*aggregates).first()
        if not row["rows"]:
            raise ValueError("cannot fit the min-max scaler: the train split has no rows")
        return cls(
            minimum={name: row[f"min_{name}"] for name in features},
            maximum={name: row[f"max_{name}"] for name in features},
            fitted_rows=int(row["rows"]),
        )

    def transform(self, frame: pd.DataFrame | pa.RecordBatch) -> dict[str, np.ndarray]:
        """``{"<feature>_scaled": float64 array}`` for a batch (pandas or Arrow) holding the raw feature columns.

        A missing raw value scales to NaN.
        """
        import numpy as np

        scaled = {}
        for name, low in self.minimum.items():
            span = self.maximum[name] - low
            values = np.asarray(frame[name], dtype=np.float64)
            scaled[f"{name}_scaled"] = (values - low) / span if span else values * 0.0
        return scaled

    def to_json(self) -> dict[str, Any]:
        """The parameters as saved in ``scaler.json`` and the manifest."""
        return {
            "method": "min-max",
            "fitted_on": "train",
            "fitted_rows": self.fitted_rows,
            "features": {
                name: {"min": self.minimum[name], "max": self.maximum[name], "output": f"{name}_scaled"}
                for name in self.minimum
            },
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> MinMaxScaler:
        """Inverse of :meth:`to_json`."""
        features = payload["features"]
        return cls(
            minimum={name: float(spec["min"]) for name, spec in features.items()},
            maximum={name: float(spec["max"]) for name, spec in features.items()},
            fitted_rows=int(payload["fitted_rows"]),
        )
