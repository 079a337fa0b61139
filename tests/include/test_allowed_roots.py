"""The allowed storage roots: the setting, and resolving a location against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.allowed_roots import OutsideAllowedRootsError, resolve_within
from include.config import REPO_ROOT, ConfigError, load_settings


def test_default_roots_are_the_data_root_and_the_repository_data_folder() -> None:
    settings = load_settings({"REVIEWFLOW_DATA_ROOT": "/srv/reviewflow/"})
    assert settings.allowed_roots == ("/srv/reviewflow", str(REPO_ROOT / ".data"))
    aws = load_settings({"REVIEWFLOW_BACKEND": "aws", "REVIEWFLOW_DATA_ROOT": "s3://bucket/prefix"})
    assert aws.allowed_roots[0] == "s3://bucket/prefix"
    assert load_settings({}).allowed_roots == (str(REPO_ROOT / ".data"),)  # the default data root, once


def test_the_setting_replaces_the_defaults() -> None:
    settings = load_settings({"REVIEWFLOW_ALLOWED_ROOTS": " /data/landing/ , s3://landing-bucket/reviews/, file:///mnt/x ,"})
    assert settings.allowed_roots == ("/data/landing", "s3://landing-bucket/reviews", "/mnt/x")


@pytest.mark.parametrize("entry", ["data/landing", "s3://", "~/reviews"])
def test_a_root_must_be_absolute(entry: str) -> None:
    with pytest.raises(ConfigError, match="REVIEWFLOW_ALLOWED_ROOTS entries must be absolute folders or s3:// URIs"):
        load_settings({"REVIEWFLOW_ALLOWED_ROOTS": entry})


def test_a_path_inside_a_root_resolves_to_itself(tmp_path: Path) -> None:
    (tmp_path / "root" / "in").mkdir(parents=True)
    assert resolve_within(f"file://{tmp_path}/root/in/x.tsv", [str(tmp_path / "root")], "source_uri") == str(
        tmp_path / "root" / "in" / "x.tsv"
    )


@pytest.mark.parametrize("outside", ["{tmp}/rootx/x.tsv", "{tmp}/root/../x.tsv", "/etc/passwd.tsv", "{tmp}/root/link/x.tsv"])
def test_a_path_that_leads_outside_is_refused(tmp_path: Path, outside: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere")  # a folder inside the root linking out of it
    with pytest.raises(OutsideAllowedRootsError) as error:
        resolve_within(outside.format(tmp=tmp_path), [str(root)], "source_uri")
    message = str(error.value)
    assert message.startswith(outside.format(tmp=tmp_path))
    assert f"outside the allowed storage roots {root} (param source_uri)" in message
    assert "REVIEWFLOW_ALLOWED_ROOTS" in message
    if "link" in outside:
        assert f"(it resolves to {tmp_path / 'elsewhere' / 'x.tsv'})" in message


def test_a_link_from_outside_to_a_file_inside_is_read_where_it_points(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "x.tsv").write_text("x")
    (tmp_path / "link.tsv").symlink_to(root / "x.tsv")
    assert resolve_within(str(tmp_path / "link.tsv"), [str(root)], "source_uri") == str(root / "x.tsv")


@pytest.mark.parametrize(
    ("uri", "inside"),
    [
        ("s3://bucket/prefix/x.tsv", True),
        ("s3://bucket/prefix/deeper/x.tsv", True),
        ("s3://bucket/prefix-other/x.tsv", False),
        ("s3://bucket/x.tsv", False),
        ("s3://other-bucket/prefix/x.tsv", False),
        ("s3://bucket/prefix/../secret/x.tsv", False),
        ("s3://bucket/prefix/./x.tsv", False),
    ],
)
def test_s3_uris_must_start_with_a_root(uri: str, inside: bool) -> None:
    roots = ["s3://bucket/prefix", "/local/root"]
    if inside:
        assert resolve_within(uri, roots, "source_uri") == uri
    else:
        with pytest.raises(OutsideAllowedRootsError, match=r"\(param source_uri\)"):
            resolve_within(uri, roots, "source_uri")
