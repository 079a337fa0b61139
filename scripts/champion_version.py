"""Print the registry's champion version, or nothing when there is none (``make run``'s first-model check)."""

from __future__ import annotations

import sys

from include.config import load_settings
from include.registry.base import DEFAULT_MODEL_NAME
from reviewflow.backends import registry_for
from reviewflow.settings import aws_conn_id


def main() -> int:
    champion = registry_for(load_settings(), DEFAULT_MODEL_NAME, aws_conn_id()).champion()
    print(champion.version if champion else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
