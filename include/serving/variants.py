"""Production variants on both backends: names, requested specs, weight checks and endpoint descriptions.

A variant's name is derived from what it serves: ``v<model version>``, plus ``-int8`` when its Linear
layers are quantised (``v3``, ``v3-int8``).  So the same request always names the same variant, every
deploy, add or remove is idempotent, and a variant name tells which registry version answered.
Weights are relative, as in SageMaker: a variant gets ``weight / sum(weights)`` of the traffic that
does not name a target variant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INT8_SUFFIX = "-int8"
# SageMaker's request header pinning a variant, and its answer header naming the variant that served.
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
INVOKED_VARIANT = "X-Amzn-Invoked-Production-Variant"
_VARIANT = re.compile(r"v([0-9]+)(-int8)?")


class WeightsError(ValueError):
    """Refused weights (unknown variant, not a finite non-negative number, all zero)."""


def variant_name(model_version: str, int8: bool = False) -> str:
    """``v<version>`` or ``v<version>-int8``. :raises ValueError: if the version is not a registry version number."""
    if not str(model_version).isdigit():
        raise ValueError(f"model_version must be a registry version number, got {model_version!r}")
    return f"v{int(model_version)}{INT8_SUFFIX if int8 else ''}"


def parse_variant_name(name: str) -> tuple[str, bool]:
    """``"v3-int8"`` → ``("3", True)``. :raises ValueError: for a name :func:`variant_name` does not make."""
    match = _VARIANT.fullmatch(name)
    if match is None:
        raise ValueError(f"variant name {name!r} is not v<model version> or v<model version>-int8")
    return match[1], bool(match[2])


@dataclass(frozen=True)
class VariantSpec:
    """A variant as a caller asks for it: a registry model version, its weight, and whether int8.

    :param model_version: registry version number (``"3"``).
    :param weight: relative traffic weight (≥ 0).
    :param int8: serve with dynamically int8-quantised Linear layers.
    """

    model_version: str
    weight: float
    int8: bool = False

    @property
    def name(self) -> str:
        return variant_name(self.model_version, self.int8)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any], where: str = "variant") -> VariantSpec:
        """From ``{"model_version": "3", "weight": 0.1, "int8": false}``.

        :raises ValueError: naming the field (prefixed by ``where``) that is missing or mistyped.
        """
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: must be an object with model_version and weight, got {value!r}")
        version = value.get("model_version")
        if isinstance(version, bool) or not isinstance(version, (str, int)) or not str(version).isdigit():
            raise ValueError(f"{where}.model_version: must be a registry version number, got {version!r}")
        weight = check_weight(f"{where}.weight", value.get("weight", 0.0))
        int8 = value.get("int8", False)
        if not isinstance(int8, bool):
            raise ValueError(f"{where}.int8: must be true or false, got {int8!r}")
        return cls(str(int(version)), weight, int8)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model_version": self.model_version, "weight": self.weight, "int8": self.int8}


def check_weight(field: str, value: object) -> float:
    """``value`` as a weight. :raises WeightsError: naming ``field`` unless a finite number ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise WeightsError(f"{field}: must be a finite number >= 0, got {value!r}")
    return float(value)


def updated_weights(current: Mapping[str, float], changes: Mapping[str, object]) -> dict[str, float]:
    """``current`` with ``changes`` applied (variants not named keep their weight, as in SageMaker).

    :raises WeightsError: for no changes, an unknown variant, a weight that is not a finite number ≥ 0, or
        a result where every weight is zero.
    """
    if not changes:
        raise WeightsError("weights: name at least one variant")
    unknown = sorted(set(changes) - set(current))
    if unknown:
        raise WeightsError(f"weights: unknown variant(s) {unknown}; the endpoint has {sorted(current)}")
    result = dict(current) | {name: check_weight(f"weights.{name}", value) for name, value in changes.items()}
    if not any(result.values()):
        raise WeightsError(f"weights: at least one variant needs a weight above 0, got {result}")
    return result


@dataclass(frozen=True)
class VariantStatus:
    """One variant as the endpoint serves it; ``invocations`` since the server started (``None`` on aws)."""

    name: str
    model_version: str
    int8: bool
    weight: float
    invocations: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "model_version": self.model_version, "int8": self.int8, "weight": self.weight,
            "invocations": self.invocations,
        }


@dataclass(frozen=True)
class EndpointDescription:
    """What ``describe`` answers on both backends.

    :param endpoint_name: the endpoint.
    :param backend: ``local`` or ``aws``.
    :param status: ``InService``, ``Stopped`` (local, not running), or SageMaker's ``EndpointStatus``.
    :param address: the local server's URL, or the SageMaker endpoint ARN.
    :param weights_generation: bumped by every change of the variant set or weights.
    :param variants: the variants, in the order they were added.
    """

    endpoint_name: str
    backend: str
    status: str
    address: str
    weights_generation: int
    variants: tuple[VariantStatus, ...]

    @property
    def weights(self) -> dict[str, float]:
        return {variant.name: variant.weight for variant in self.variants}

    def specs(self) -> list[VariantSpec]:
        """The variants as specs, to deploy the same set again (with one more, or one fewer)."""
        return [VariantSpec(v.model_version, v.weight, v.int8) for v in self.variants]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (XCom, the admin API)."""
        return {
            "endpoint_name": self.endpoint_name, "backend": self.backend, "status": self.status,
            "address": self.address, "weights_generation": self.weights_generation,
            "variants": [variant.to_dict() for variant in self.variants],
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> EndpointDescription:
        return cls(
            endpoint_name=value["endpoint_name"], backend=value["backend"], status=value["status"],
            address=value["address"], weights_generation=int(value["weights_generation"]),
            variants=tuple(VariantStatus(**variant) for variant in value["variants"]),
        )
