"""Print the registry's champion version, or nothing when there is none (``make run``'s first-model check)."""

from __future__ import annotations

import sys

from include.config import load_settings
from reviewflow.hooks.registry import registry_for


def main() -> int:
    champion = registry_for(load_settings()).champion()
    print(champion.version if champion else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
