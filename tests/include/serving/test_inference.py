"""The inference module: input built like the features stage, safe loading, int8, and the SageMaker functions
called the way the Hugging Face inference toolkit calls them, from the model archive's code/ folder."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from include.features.text import review_text
from include.features.tokenizer import tokenize_batch
from include.sample_data import COLUMNS, SampleSpec, generate_rows
from include.serving.inference import ModelFolderError, RequestError, ReviewClassifier, parse_reviews
from include.serving.sagemaker import CODE_FILES, write_model_archive
from tests.conftest import SERVED_MAX_SEQ_LENGTH as MAX_SEQ_LENGTH


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from include.training.sample_features import write_tiny_classifier

    return write_tiny_classifier(tmp_path_factory.mktemp("tiny") / "model", 3, MAX_SEQ_LENGTH, truncation="head_tail")


def test_model_input_is_built_and_tokenized_like_the_features_stage(model_dir: Path) -> None:
    col = {name: i for i, name in enumerate(COLUMNS)}
    rows = list(generate_rows(SampleSpec(200, 7)))
    texts = parse_reviews({"instances": [{"review_headline": r[col["review_headline"]], "review_body": r[col["review_body"]]}
                                         for r in rows]}, max_items=200)
    assert texts == [review_text(r[col["review_headline"]], r[col["review_body"]]) for r in rows]
    input_ids, mask = ReviewClassifier.load(model_dir).encode(texts)
    served = [ids[: int(m.sum())].tolist() for ids, m in zip(input_ids, mask, strict=True)]
    # The bundled tokenizer and the truncation the model was trained with (classifier.json: head_tail).
    assert served == tokenize_batch(texts, MAX_SEQ_LENGTH, "head_tail").input_ids
    assert served != tokenize_batch(texts, MAX_SEQ_LENGTH, "head").input_ids  # long reviews were cut head + tail
    assert max(map(len, served)) == MAX_SEQ_LENGTH


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ([], "body", 400),
        ({"review_body": None}, "review_body", 400),
        ({"instances": []}, "instances", 400),
        ({"instances": [{"review_body": "a"}, "b"]}, "instances[1]", 400),
        ({"instances": [{"review_body": "a"}] * 3}, "instances", 413),
    ],
)
def test_parse_reviews_names_the_field(payload: object, field: str, status: int) -> None:
    with pytest.raises(RequestError) as refused:
        parse_reviews(payload, max_items=2)
    assert (refused.value.field, refused.value.status) == (field, status)


def test_only_complete_safetensors_folders_are_loaded(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    pickled = tmp_path / "pickled"
    shutil.copytree(model_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ModelFolderError, match="model.safetensors is missing: only safetensors"):
        ReviewClassifier.load(pickled)
    shutil.copytree(model_dir, tmp_path / "undescribed")
    (tmp_path / "undescribed" / "classifier.json").unlink()
    with pytest.raises(ModelFolderError, match=r"undescribed: cannot be loaded: .*needs classifier.json"):
        ReviewClassifier.load(tmp_path / "undescribed")


def test_int8_quantises_the_linear_layers(model_dir: Path) -> None:
    import torch

    quantised = ReviewClassifier.load(model_dir, int8=True)
    modules = list(quantised.model.modules())
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules)
    assert not any(type(m) is torch.nn.Linear for m in modules)
    [prediction] = quantised.predict(["Great value, works."])
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


TOOLKIT = r"""
import json, sys
from inspect import signature
model_dir, body = sys.argv[1], sys.argv[2]
sys.path.insert(0, model_dir + "/code")  # what HuggingFaceHandlerService.initialize does
import inference  # SAGEMAKER_PROGRAM=inference.py
assert inference.__file__.startswith(model_dir + "/code/"), inference.__file__
# The toolkit passes its context only to functions taking one more argument than these.
arity = {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2}
assert {name: len(signature(getattr(inference, name)).parameters) for name in arity} == arity
model = inference.model_fn(model_dir)
data = inference.input_fn(body, "application/json")
prediction = inference.predict_fn(data, model)
response = inference.output_fn(prediction, "application/json")
try:
    inference.input_fn('{"review_body": ""}', "application/json")
except ValueError as error:  # the toolkit answers 400 with str(error)
    refused = str(error)
text_module = sys.modules["include.features.text"].__file__
print(json.dumps({"response": json.loads(response), "refused": refused, "text_module": text_module}))
"""


def test_sagemaker_functions_run_from_the_model_archive(model_dir: Path, tmp_path: Path) -> None:
    """Build the archive the aws endpoint deploys, unpack it like SageMaker, and drive it like the toolkit."""
    training_output = io.BytesIO()
    with tarfile.open(fileobj=training_output, mode="w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    training_output.seek(0)
    archive = io.BytesIO()
    names = write_model_archive(training_output, archive, model_version="7", int8=True)
    assert {f"code/{name}" for name in CODE_FILES} | {"serving.json", "model.safetensors"} <= set(names)
    archive.seek(0)
    opt_ml_model = tmp_path / "opt-ml-model"
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        tar.extractall(opt_ml_model, filter="data")

    body = json.dumps({"instances": [{"review_headline": "Great", "review_body": "Love it"}, {"review_body": "Awful."}]})
    result = subprocess.run(
        [sys.executable, "-c", TOOLKIT, str(opt_ml_model), body], capture_output=True, text=True, check=True,
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},  # no PYTHONPATH: only code/ is importable
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    items = answer["response"]["predictions"]
    assert [(item["variant"], item["model_version"]) for item in items] == [("v7-int8", "7")] * 2
    assert answer["refused"] == "review_body: is empty"
    assert answer["text_module"].startswith(str(opt_ml_model / "code" / "include"))
