"""Print ``REVIEWFLOW_ALLOWED_ROOTS`` with the folder of the source ``make run``/``make ingest`` was given.

The file named with ``SOURCE=`` on the command line is read wherever it lies (whoever runs make chose
it); the allowed roots still hold for everything else, and a symlink in that folder pointing
elsewhere is still refused (the staging task resolves it before checking)::

    REVIEWFLOW_ALLOWED_ROOTS="$(python scripts/allow_source.py /home/me/reviews.tsv.gz)" airflow dags test …
"""

from __future__ import annotations

import argparse
import sys

from include.config import ConfigError, load_settings


def roots_with_source(roots: tuple[str, ...], source_uri: str) -> str:
    """``roots`` plus the folder holding ``source_uri``, comma-separated (the setting's format)."""
    folder = source_uri.removeprefix("file://").rstrip("/").rsplit("/", 1)[0] or "/"
    return ",".join(roots if folder in roots else (*roots, folder))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_uri", help="an absolute path or an s3:// URI")
    args = parser.parse_args(argv)
    try:
        print(roots_with_source(load_settings().allowed_roots, args.source_uri))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
