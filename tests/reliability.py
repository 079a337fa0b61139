"""Result records of the reliability tests, rendered into docs/reliability.md by ``make reliability``.

A test marked ``reliability`` takes the ``reliability`` fixture (tests/conftest.py) and fills in one
:class:`ReliabilityRecord`: which section of the report, the case, what was tried, the path it took
and the outcome it observed. When the environment variable ``RELIABILITY_RECORDS`` names a folder,
the fixture writes the record there as JSON after the test, with ``held`` = whether the test passed,
so a failing test shows in the report as not held rather than disappearing.
``scripts/render_reliability.py`` turns the folder into the report.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

RECORDS_ENV = "RELIABILITY_RECORDS"
REPO = Path(__file__).resolve().parent.parent


def shown(text: str, test_folder: Path, temp_root: Path) -> str:
    """``text`` without this machine's folders and run ids: the test's own temporary folder becomes
    ``<tmp>``, other temporary folders ``<pytest tmp>``, the repository relative paths, a run id ``<run>``."""
    text = text.replace(str(test_folder), "<tmp>").replace(str(temp_root), "<pytest tmp>").replace(f"{REPO}/", "")
    return re.sub(r"manual__\d{4}-\d\d-\d\dT[\d:.+-]+", "<run>", text)


@dataclass
class ReliabilityRecord:
    """What one reliability test tried and saw."""

    test: str
    section: str = ""
    case: str = ""
    tried: str = ""
    path: str = ""
    outcome: str = ""

    def write(self, folder: Path, held: bool) -> Path:
        """Write the record as ``<folder>/<hash of the test id>.json`` (one file per test, replaced on a rerun)."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{hashlib.sha256(self.test.encode()).hexdigest()[:16]}.json"
        target.write_text(json.dumps(asdict(self) | {"held": held}, indent=2) + "\n")
        return target

    def shown_by(self, test_folder: Path, temp_root: Path) -> ReliabilityRecord:
        """This record with every text field passed through :func:`shown`."""
        fields = {name: shown(value, test_folder, temp_root) for name, value in asdict(self).items() if name != "test"}
        return ReliabilityRecord(test=self.test, **fields)
