"""Print the registry version an alias points at (``champion`` unless named), or nothing when none does:
``make run``'s checks for a first model (no champion yet) and for a challenger to roll out."""

from __future__ import annotations

import sys

from include.config import load_settings
from include.registry.base import CHAMPION, DEFAULT_MODEL_NAME
from reviewflow.backends import registry_for
from reviewflow.settings import aws_conn_id


def main(alias: str = CHAMPION) -> int:
    holder = registry_for(load_settings(), DEFAULT_MODEL_NAME, aws_conn_id()).version_for_alias(alias)
    print(holder.version if holder else "")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
