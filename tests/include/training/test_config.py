"""The training job's CLI: TrainConfig's fields as arguments (HfArgumentParser-style), help, types, defaults."""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

import pytest

from include.training import jobs
from include.training.sourcedir.finetune.config import TrainConfig, parse_args
from include.training.sourcedir.finetune.parser import DataclassArgumentParser, string_to_bool


def test_every_field_has_help_text_shown_by_help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps the help to the terminal, also inside hyphenated words
    fields = dataclasses.fields(TrainConfig)
    assert [spec.name for spec in fields if len(spec.metadata.get("help", "")) < 15] == []
    with pytest.raises(SystemExit) as shown:
        parse_args(["--help"], {})
    assert shown.value.code == 0
    usage = " ".join(capsys.readouterr().out.split())
    for spec in fields:
        assert f"--{spec.name}" in usage
        assert " ".join(spec.metadata["help"].split()) in usage, spec.name
        assert f"(default: {spec.default})" in usage or spec.default == "", spec.name
    for path in ("--model_dir", "--output_data_dir", "--checkpoint_dir", "--train", "--validation", "--test"):
        assert path in usage


def test_no_arguments_give_the_dataclass_defaults() -> None:
    config, paths = parse_args([], {})
    assert config == TrainConfig()
    assert (config.epochs, config.learning_rate, config.group_by_length, config.padding) == (2, 1e-4, True, "dynamic")
    assert paths.model_dir.as_posix() == "/opt/ml/model" and paths.train.as_posix() == "/opt/ml/input/data/train"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--learning_rate", "2e-5"], {"learning_rate": 2e-5}),
        (["--warmup_ratio", "0"], {"warmup_ratio": 0.0}),
        (["--epochs", "3", "--max_steps", "40"], {"epochs": 3, "max_steps": 40}),
        (["--group_by_length", "True"], {"group_by_length": True}),
        (["--group_by_length", "False"], {"group_by_length": False}),
        (["--group_by_length", "false"], {"group_by_length": False}),
        (["--group_by_length", "0"], {"group_by_length": False}),
        (["--group_by_length"], {"group_by_length": True}),
        (["--no_group_by_length"], {"group_by_length": False}),
        (["--class_weights", ""], {"class_weights": ""}),
        (["--pooling", "cls", "--truncation", "head_tail", "--padding", "max_length"],
         {"pooling": "cls", "truncation": "head_tail", "padding": "max_length"}),
    ],
)
def test_sagemaker_hyperparameter_strings_become_typed_values(argv: list[str], expected: dict[str, object]) -> None:
    config, _ = parse_args(argv, {})
    assert {name: getattr(config, name) for name in expected} == expected
    for name, value in expected.items():
        assert type(getattr(config, name)) is type(value), name


def test_hyperparameters_survive_the_sagemaker_json_round_trip() -> None:
    """CreateTrainingJob carries JSON strings; the container decodes them and passes ``--name value``."""
    hyperparameters = {"learning_rate": "2e-05", "epochs": "3", "group_by_length": "false", "class_weights": "1.0,0,2.5"}
    spec = jobs.SageMakerJobSpec(
        job_name="j", image_uri="i", role_arn="r", region="eu-west-1", instance_type="ml.g5.xlarge",
        features_uri="s3://b/f", output_uri="s3://b/o/", checkpoint_uri="s3://b/c/", source_uri="s3://b/s.tar.gz",
        hyperparameters=hyperparameters,
    )
    sent = jobs.sagemaker_training_config(spec)["HyperParameters"]
    decoded = {name: json.loads(value) for name, value in sent.items() if not name.startswith("sagemaker_")}
    config, _ = parse_args(jobs.cli_arguments(decoded), {})
    assert (config.learning_rate, config.epochs, config.group_by_length, config.class_weights) == (2e-5, 3, False, "1.0,0,2.5")


@pytest.mark.parametrize(
    "argv",
    [["--epochs", "2.5"], ["--learning_rate", "fast"], ["--group_by_length", "maybe"], ["--padding", "left"],
     ["--pooling", "max"], ["--batch_size", "8"]],
)
def test_a_bad_value_or_unknown_flag_exits_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        parse_args(argv, {})
    assert refused.value.code == 2 and argv[0] in capsys.readouterr().err


def test_string_to_bool_reads_what_sagemaker_and_people_write() -> None:
    assert [string_to_bool(v) for v in ("True", "true", "YES", "y", "1", "t")] == [True] * 6
    assert [string_to_bool(v) for v in ("False", "false", "No", "n", "0", "f")] == [False] * 6
    with pytest.raises(argparse.ArgumentTypeError, match="expected a boolean"):
        string_to_bool("2")


def test_the_parser_builds_arguments_from_any_dataclass() -> None:
    @dataclass
    class Job:
        name: str = field(metadata={"help": "required: no default"})
        mode: Literal["fast", "slow"] = field(default="fast", metadata={"help": "a choice"})
        size: int = field(default_factory=lambda: 3, metadata={"help": "default from a factory"})
        dry_run: bool = field(default=False, metadata={"help": "a flag"})

    parser = DataclassArgumentParser([Job])
    parser.add_argument("--extra", default="x")
    job, rest = parser.parse_args_into_dataclasses(["--name", "n", "--mode", "slow", "--size", "4", "--dry_run"])
    assert job == Job(name="n", mode="slow", size=4, dry_run=True) and vars(rest) == {"extra": "x"}
    (job,) = DataclassArgumentParser([Job]).parse_args_into_dataclasses(["--name", "n"])
    assert job == Job(name="n")
    with pytest.raises(SystemExit):
        DataclassArgumentParser([Job]).parse_args_into_dataclasses([])
