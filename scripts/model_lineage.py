"""Print the chain behind a registered model (``make lineage MODEL=<version>``; default: the champion).

From the registry (the version's lineage, approval, aliases) and the run summaries: the source file
and its checksum, the snapshot and its row counts, the quality verdict, the feature manifest, the
training params and code commit, who approved it and when, and the rollout that promoted it. Each
cached step says when its output was reused from another run.
"""

from __future__ import annotations

import argparse
import sys

from include.config import load_settings
from include.registry.base import DEFAULT_MODEL_NAME
from include.registry.lineage import model_chain
from include.uris import join_uri
from reviewflow.backends import registry_for
from reviewflow.run_summary import list_run_summaries, read_run_summary
from reviewflow.settings import aws_conn_id


def chain_lines(model: str | None) -> list[str]:
    """The printed lines for registry version ``model`` (``None``: the champion)."""
    settings = load_settings()
    connection = aws_conn_id()  # the registry's and the run summaries' on aws
    registry = registry_for(settings, DEFAULT_MODEL_NAME, connection)
    version = registry.get_version(model) if model else registry.champion()
    if version is None:
        raise SystemExit("no champion in the registry yet: run make run first, or give MODEL=<version>")
    lineage = version.lineage
    summaries = list_run_summaries(settings, connection)
    rollouts = {key: summary for key, summary in summaries.items() if "rollout" in summary}
    links = model_chain(
        version.to_dict(),
        read_run_summary(settings, version.run_key, connection),
        read_run_summary(settings, lineage["source_snapshot"], connection) if lineage.get("source_snapshot") else None,
        rollouts,
    )
    header = f"Lineage of {version.name} v{version.version} (run summaries under {join_uri(settings.data_root, 'reports')})"
    return [header, *(f"  {link:<14} {what}" for link, what in links)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="", help="registry version (default: the champion)")
    args = parser.parse_args(argv)
    print("\n".join(chain_lines(args.model or None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
