"""An ``argparse`` parser built from dataclasses, the way Hugging Face's ``HfArgumentParser`` builds one.

Every field becomes ``--<name>`` with the field's type and default; its ``metadata`` (``help``, and any
other ``add_argument`` keyword) is passed to argparse as is.  A ``Literal[...]`` field takes one of its
values.  A ``bool`` field reads the strings SageMaker passes (``True``, ``false``, ``1``, ``no`` …),
``--<name>`` alone means true, and a field that defaults to true also gets ``--no_<name>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, Literal

TRUE_STRINGS = ("yes", "true", "t", "y", "1")
FALSE_STRINGS = ("no", "false", "f", "n", "0")


def string_to_bool(value: str | bool) -> bool:
    """``True``/``yes``/``1`` → True, ``False``/``no``/``0`` → False (any case); else an argparse error."""
    if isinstance(value, bool):
        return value
    if value.lower() in TRUE_STRINGS:
        return True
    if value.lower() in FALSE_STRINGS:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean ({', '.join(TRUE_STRINGS + FALSE_STRINGS)}), got {value!r}")


class DataclassArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` with one ``--<name>`` argument per field of each dataclass in ``dataclass_types``.

    Arguments added afterwards with :meth:`add_argument` come back in a namespace after the dataclasses
    (see :meth:`parse_args_into_dataclasses`).
    """

    def __init__(self, dataclass_types: Sequence[type], **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(**kwargs)
        self.dataclass_types = list(dataclass_types)
        for dtype in self.dataclass_types:
            hints = typing.get_type_hints(dtype)  # types, also where annotations are strings (PEP 563)
            for spec in dataclasses.fields(dtype):
                if spec.init:
                    self._add_field(spec, hints[spec.name])

    def _add_field(self, spec: dataclasses.Field[Any], kind: Any) -> None:
        kwargs: dict[str, Any] = dict(spec.metadata)
        if spec.default is not dataclasses.MISSING:
            kwargs["default"] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            kwargs["default"] = spec.default_factory()
        else:
            kwargs["required"] = True
        if typing.get_origin(kind) is Literal:
            kwargs["choices"] = typing.get_args(kind)
            kwargs["type"] = type(kwargs["choices"][0])
        elif kind is bool:
            kwargs.update(type=string_to_bool, nargs="?", const=True)
        else:
            kwargs["type"] = kind
        self.add_argument(f"--{spec.name}", **kwargs)
        if kind is bool and kwargs.get("default") is True:
            self.add_argument(f"--no_{spec.name}", action="store_false", dest=spec.name, help=f"Sets {spec.name} to false.")

    def parse_args_into_dataclasses(self, args: Sequence[str] | None = None) -> tuple[Any, ...]:
        """Parse ``args`` (default: ``sys.argv[1:]``) into one instance of each dataclass, in the order given,
        followed by a namespace of the other arguments when there are any.

        Exits with a usage message (``SystemExit``) on an unknown argument or a value of the wrong type.
        """
        namespace = self.parse_args(args)
        outputs: list[Any] = []
        for dtype in self.dataclass_types:
            names = [spec.name for spec in dataclasses.fields(dtype) if spec.init]
            outputs.append(dtype(**{name: getattr(namespace, name) for name in names}))
            for name in names:
                delattr(namespace, name)
        if vars(namespace):
            outputs.append(namespace)
        return tuple(outputs)
