"""The step cache's protocol on real storage: what misses (a changed snapshot, code file or expiry, a lost
file, force) and that a killed or half-written step never leaves a hit (plugins/reviewflow/caching.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from include.caching import SNAPSHOT_MANIFEST, Seal, seal_name
from include.config import load_settings
from reviewflow.caching import StepCache, snapshot_fingerprint
from tests.conftest import AWS_CONN_ID


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


def snapshot(root: Path, name: str, fingerprint: str) -> str:
    """A curated snapshot folder whose committed manifest records ``fingerprint``."""
    folder = root / "curated" / f"snapshot={name}"
    folder.mkdir(parents=True)
    (folder / SNAPSHOT_MANIFEST).write_text(json.dumps({"rows": 3, "columns": ["a"], "fingerprint": fingerprint}))
    return str(folder)


def features_cache(root: Path, run: str) -> StepCache:
    settings = load_settings({"REVIEWFLOW_BACKEND": "local", "REVIEWFLOW_DATA_ROOT": str(root)})
    return StepCache(settings, "features", str(root / "features" / run), run, AWS_CONN_ID)


def write_output(cache: StepCache, text: str) -> None:
    """What a step commits: two files, one in a subfolder."""
    out = Path(cache.output_uri)
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "train" / "part-0.parquet").write_text(text)
    (out / "manifest.json").write_text(json.dumps({"text": text}))


def decide(cache: StepCache, snapshot_uri: str, code: Path, *, force: bool = False, expire_after: str | None = "P30D"):
    return cache.decide(
        {"snapshot": snapshot_fingerprint(snapshot_uri, AWS_CONN_ID)}, {"seed": 42}, (code,), force=force, expire_after=expire_after
    )


def computed(root: Path, run: str, snapshot_uri: str, code: Path) -> StepCache:
    cache = features_cache(root, run)
    cache.run(decide(cache, snapshot_uri, code), lambda: write_output(cache, run))
    return cache


def test_same_inputs_hit_and_the_output_is_copied_and_sealed(root: Path, tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    code.write_text("print('features')\n")
    first = computed(root, "run-1", snapshot(root, "a", "content-1"), code)
    second = features_cache(root, "run-2")
    decision = decide(second, snapshot(root, "b", "content-1"), code)  # another snapshot, same content
    assert (decision.status, decision.seal.computed_by) == ("hit", "run-1")
    second.run(decision, lambda: pytest.fail("a hit must not compute"))
    copied = Path(second.output_uri)
    assert (copied / "manifest.json").read_text() == (Path(first.output_uri) / "manifest.json").read_text()
    seal = Seal.from_json(json.loads((copied / seal_name("features")).read_text()))
    assert (seal.run_key, seal.computed_by, seal.files) == ("run-2", "run-1", ("manifest.json", "train/part-0.parquet"))
    assert decision.summary()["from_run"] == "run-1"


def test_a_changed_snapshot_code_file_or_force_misses(root: Path, tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    code.write_text("print('features')\n")
    computed(root, "run-1", snapshot(root, "a", "content-1"), code)
    cache = features_cache(root, "run-2")
    same = snapshot(root, "b", "content-1")
    assert decide(cache, same, code).status == "hit"
    assert decide(cache, snapshot(root, "c", "content-2"), code).status == "miss"
    assert decide(cache, same, code, force=True).reason.startswith("force")
    code.write_text("print('features, edited')\n")
    assert decide(cache, same, code).status == "miss"


def test_a_snapshot_without_a_manifest_turns_caching_off(root: Path, tmp_path: Path) -> None:
    bare = root / "curated" / "snapshot=athena"
    bare.mkdir(parents=True)
    decision = decide(features_cache(root, "run-1"), str(bare), tmp_path)
    assert decision.status == "off" and SNAPSHOT_MANIFEST in decision.reason


def test_expired_or_incomplete_outputs_miss(root: Path, tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    code.write_text("x = 1\n")
    first = computed(root, "run-1", snapshot(root, "a", "content-1"), code)
    same = snapshot(root, "b", "content-1")
    cache = features_cache(root, "run-2")
    seal_path = Path(first.output_uri) / seal_name("features")
    seal = json.loads(seal_path.read_text())
    seal_path.write_text(json.dumps(seal | {"committed_at": (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()}))
    assert "expired" in decide(cache, same, code, expire_after="P1D").reason
    assert decide(cache, same, code, expire_after="").status == "hit"  # empty: never expires
    (Path(first.output_uri) / "train" / "part-0.parquet").unlink()
    assert "lost 1 file" in decide(cache, same, code).reason


def test_a_killed_step_leaves_no_hit(root: Path, tmp_path: Path) -> None:
    code = tmp_path / "job.py"
    code.write_text("x = 1\n")
    content = snapshot(root, "a", "content-1")

    class Killed(Exception):
        pass

    def half_written(cache: StepCache) -> None:
        (Path(cache.output_uri) / "train").mkdir(parents=True, exist_ok=True)
        (Path(cache.output_uri) / "train" / "part-0.parquet").write_text("half")
        raise Killed

    # Killed before its first commit: no seal, no index entry.
    killed = features_cache(root, "run-1")
    with pytest.raises(Killed):
        killed.run(decide(killed, content, code), lambda: half_written(killed))
    assert decide(features_cache(root, "run-2"), content, code).reason == "no committed output with this fingerprint"

    # A committed output rewritten by a retry that was killed half-way: its seal went first, so the index
    # entry that names it is no longer a hit.
    done = computed(root, "run-3", content, code)
    with pytest.raises(Killed):
        done.run(decide(done, content, code, force=True), lambda: half_written(done))
    assert "no longer holds" in decide(features_cache(root, "run-4"), content, code).reason


def test_the_protocol_holds_on_s3(aws, tmp_path: Path) -> None:
    """The same seal, index, lookup and reuse through the S3 storage (moto), ready for an aws snapshot manifest."""
    from include.uris import join_uri
    from reviewflow.hooks.storage import S3StorageHook

    settings = load_settings()
    s3 = S3StorageHook(aws_conn_id=AWS_CONN_ID)
    snapshot_uri = join_uri(settings.data_root, "curated", "snapshot=a")
    s3.write_bytes(join_uri(snapshot_uri, SNAPSHOT_MANIFEST), json.dumps({"fingerprint": "content-1"}).encode())
    code = tmp_path / "job.py"
    code.write_text("x = 1\n")

    def cache_of(run: str) -> StepCache:
        return StepCache(settings, "features", join_uri(settings.data_root, "features", run), run, AWS_CONN_ID)

    def commit(cache: StepCache) -> None:
        s3.write_bytes(join_uri(cache.output_uri, "train", "part-0.parquet"), b"rows")
        s3.write_bytes(join_uri(cache.output_uri, "manifest.json"), b"{}")

    first = cache_of("run-1")
    first.run(decide(first, snapshot_uri, code), lambda: commit(first))
    second = cache_of("run-2")
    decision = decide(second, snapshot_uri, code)
    assert (decision.status, decision.seal.computed_by) == ("hit", "run-1")
    second.run(decision, lambda: pytest.fail("a hit must not compute"))
    assert s3.list_files(second.output_uri) == [seal_name("features"), "manifest.json", "train/part-0.parquet"]
    first.unseal()
    assert "no longer holds" in decide(cache_of("run-3"), snapshot_uri, code).reason
