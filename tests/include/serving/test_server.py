"""The local endpoint over real HTTP on loopback: SageMaker contract, weights, admin API, feedback, restarts."""

from __future__ import annotations

import json
import math
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import httpx
import pytest

from include.features.text import review_text
from include.serving.control import EndpointError, deploy, read_server_info, running_server, start_server, stop_server
from include.serving.feedback import FeedbackStore
from include.serving.inference import ReviewClassifier
from include.serving.state import EndpointPaths, admin_token, load_state
from include.serving.variants import INVOKED_VARIANT, TARGET_VARIANT, VariantSpec
from tests.include.serving.conftest import MODEL, LocalEndpoint
from tests.reliability import ReliabilityRecord

REVIEW = {"review_headline": "Five Stars", "review_body": "Works great&#34;<br />really"}


def post(url: str, payload: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/invocations", json=payload, headers=headers, timeout=30)


def test_ping_and_one_review(endpoint: LocalEndpoint) -> None:
    assert httpx.get(f"{endpoint.url}/ping").status_code == 200
    response = post(endpoint.url, REVIEW)
    assert response.status_code == 200
    [item] = response.json()["predictions"]
    assert item["variant"] == response.headers[INVOKED_VARIANT] in ("v1", "v2")
    assert item["model_version"] == item["variant"].removeprefix("v")
    assert set(item["probabilities"]) == {"negative", "neutral", "positive"}
    assert math.isclose(sum(item["probabilities"].values()), 1.0, abs_tol=1e-4)
    assert item["label"] == max(item["probabilities"], key=item["probabilities"].get)
    assert len(item["inference_id"]) == 32


def test_batch_pinned_to_a_variant_answers_like_the_inference_module(endpoint: LocalEndpoint, served_registry: Path) -> None:
    reviews = [REVIEW, {"review_body": "Broke after two days. Do not buy."}, {"review_headline": None, "review_body": "ok"}]
    response = post(endpoint.url, {"instances": reviews}, **{TARGET_VARIANT: "v2"})
    assert response.status_code == 200 and response.headers[INVOKED_VARIANT] == "v2"
    items = response.json()["predictions"]
    assert [item["variant"] for item in items] == ["v2"] * 3 and len({item["inference_id"] for item in items}) == 3
    classifier = ReviewClassifier.load(served_registry / "models" / "run-2" / "model")
    expected = classifier.predict([review_text(r.get("review_headline"), r["review_body"]) for r in reviews])
    for item, prediction in zip(items, expected, strict=True):
        assert item["label"] == prediction.label
        assert item["probabilities"] == pytest.approx(prediction.probabilities, abs=1e-5)


@dataclass(frozen=True)
class BadRequest:
    """A malformed request and the 4xx it must get: ``field`` is what the error body names."""

    tried: str
    route: str
    body: bytes
    status: int
    field: str
    headers: dict[str, str] = dc_field(default_factory=dict)
    method: str = "POST"
    admin: bool = False


def as_json(payload: object) -> bytes:
    return json.dumps(payload).encode()


# The module's endpoint takes at most 8 reviews and 20,000 bytes per request.
BAD_REQUESTS = {
    "invalid JSON": BadRequest("a body that is not JSON", "/invocations", b"{not json", 400, "body"),
    "empty body": BadRequest("no body at all", "/invocations", b"", 400, "body"),
    "invalid UTF-8": BadRequest("bytes that are not UTF-8 inside a JSON string", "/invocations",
                                b'{"review_body": "caf\xe9 \xff"}', 400, "body"),
    "lone surrogate": BadRequest("a JSON escape of half a UTF-16 pair (\\ud800), which no UTF-8 text can hold",
                                 "/invocations", b'{"review_body": "ok \\ud800"}', 400, "review_body"),
    "deep nesting": BadRequest("arrays nested 5,000 deep (10 kB)", "/invocations", b"[" * 5000 + b"]" * 5000, 400, "body"),
    "a JSON array": BadRequest("a list instead of a review object", "/invocations", as_json(["ok"]), 400, "body"),
    "missing review_body": BadRequest("a review without its body", "/invocations", as_json({"review_headline": "x"}),
                                      400, "review_body"),
    "blank review_body": BadRequest("a body of HTML breaks and spaces", "/invocations",
                                    as_json({"review_body": "  <br />  "}), 400, "review_body"),
    "review_body a number": BadRequest("a number as the body", "/invocations", as_json({"review_body": 5}), 400,
                                       "review_body"),
    "review_headline a list": BadRequest("a list as the headline", "/invocations",
                                         as_json({"review_body": "ok", "review_headline": ["x"]}), 400, "review_headline"),
    "instances a string": BadRequest("instances not a list", "/invocations", as_json({"instances": "ok"}), 400, "instances"),
    "empty batch": BadRequest("instances an empty list", "/invocations", as_json({"instances": []}), 400, "instances"),
    "one bad review in a batch": BadRequest("the second of two reviews empty", "/invocations",
                                            as_json({"instances": [{"review_body": "ok"}, {"review_body": ""}]}), 400,
                                            "instances[1].review_body"),
    "oversize batch": BadRequest("9 reviews where 8 are allowed", "/invocations",
                                 as_json({"instances": [{"review_body": "ok"}] * 9}), 413, "instances"),
    "oversize body": BadRequest("a 30 kB review where 20 kB are allowed", "/invocations",
                                as_json({"review_body": "x" * 30_000}), 413, "body"),
    "wrong content type": BadRequest("a review sent as text/csv", "/invocations", as_json(REVIEW), 415, "Content-Type",
                                     {"Content-Type": "text/csv"}),
    "unknown target variant": BadRequest("X-Amzn-SageMaker-Target-Variant: v9 (the endpoint has v1, v2)", "/invocations",
                                         as_json(REVIEW), 400, TARGET_VARIANT, {TARGET_VARIANT: "v9"}),
    "GET /invocations": BadRequest("the wrong method", "/invocations", b"", 405, "method", method="GET"),
    "unknown route": BadRequest("a path the endpoint does not have", "/predict", as_json(REVIEW), 404, "path"),
    "feedback: invalid JSON": BadRequest("a body that is not JSON", "/feedback", b"reward=1", 400, "body"),
    "feedback: missing inference_id": BadRequest("a reward without its id", "/feedback", as_json({"reward": 1}), 400,
                                                 "inference_id"),
    "feedback: inference_id a number": BadRequest("an id that is a number", "/feedback",
                                                  as_json({"inference_id": 7, "reward": 1}), 400, "inference_id"),
    "feedback: missing reward": BadRequest("an id without a reward", "/feedback", as_json({"inference_id": "abc"}), 400,
                                           "reward"),
    "feedback: reward 0.5": BadRequest("a reward that is neither 0 nor 1", "/feedback",
                                       as_json({"inference_id": "abc", "reward": 0.5}), 400, "reward"),
    "feedback: lone surrogate": BadRequest("an id holding half a UTF-16 pair", "/feedback",
                                           b'{"inference_id": "\\udc80", "reward": 1}', 400, "inference_id"),
    "feedback: unknown id": BadRequest("a reward for an id never served", "/feedback",
                                       as_json({"inference_id": "never-served", "reward": 1}), 404, "inference_id"),
    "admin weights: not an object": BadRequest("weights as a list", "/admin/weights", as_json({"weights": [1, 0]}), 400,
                                               "weights", admin=True),
    "admin weights: NaN": BadRequest("a weight of NaN", "/admin/weights", b'{"weights": {"v1": NaN}}', 400, "weights.v1",
                                     admin=True),
    "admin variants: model_version missing": BadRequest("a variant without a model version", "/admin/variants",
                                                        as_json({"weight": 0.1}), 400, "body.model_version", admin=True),
    "admin variants: int8 a string": BadRequest("int8: \"yes\"", "/admin/variants",
                                                as_json({"model_version": "1", "int8": "yes"}), 400, "body.int8", admin=True),
    "admin variants: unknown version": BadRequest("a version the registry does not have", "/admin/variants",
                                                  as_json({"model_version": "99"}), 404, "body.model_version", admin=True),
    "admin: delete an unknown variant": BadRequest("DELETE /admin/variants/v9", "/admin/variants/v9", b"", 404, "variant",
                                                   method="DELETE", admin=True),
}


@pytest.mark.reliability
@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_a_4xx_naming_the_field(endpoint: LocalEndpoint, case: str, reliability: ReliabilityRecord) -> None:
    bad = BAD_REQUESTS[case]
    reliability.section, reliability.case = "Bad inputs", f"{bad.method} {bad.route}: {case}"
    reliability.tried, reliability.path = bad.tried, "the local endpoint over HTTP"
    headers = {"Content-Type": "application/json", **bad.headers}
    if bad.admin:
        headers["Authorization"] = f"Bearer {endpoint.token}"
    with endpoint.client() as client:
        generation = client.describe().weights_generation
    response = httpx.request(bad.method, f"{endpoint.url}{bad.route}", content=bad.body, headers=headers, timeout=30)
    error = response.json()["error"]
    reliability.outcome = f"{response.status_code}, field {error['field']}: {error['message']}"
    assert (response.status_code, error["field"]) == (bad.status, bad.field), response.text
    assert error["message"]
    assert post(endpoint.url, REVIEW).status_code == 200  # still serving
    with endpoint.client() as client:
        assert client.describe().weights_generation == generation  # and nothing changed
    reliability.outcome += "; the server kept serving, its variants and weights unchanged"


def test_admin_api_needs_the_token(endpoint: LocalEndpoint) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": endpoint.token}):
        response = httpx.get(f"{endpoint.url}/admin/endpoint", headers=headers)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
        assert endpoint.token not in response.text
    refused = httpx.post(f"{endpoint.url}/admin/weights", json={"weights": {"v2": 1.0}})
    assert refused.status_code == 401
    with endpoint.client() as client:
        assert client.describe().weights == {"v1": 0.8, "v2": 0.2}
    assert stat.S_IMODE(endpoint.paths.token.stat().st_mode) == 0o600
    assert endpoint.token not in endpoint.paths.log.read_text()


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    paths = EndpointPaths.for_endpoint(tmp_path, "private")
    token = admin_token(paths, None)
    assert admin_token(paths, None) == token and admin_token(paths, "from-the-environment") == "from-the-environment"
    paths.token.chmod(0o644)
    with pytest.raises(PermissionError, match="accessible by group or others"):
        admin_token(paths, None)


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"v3": 1.0}, "weights"),
        ({"v1": -0.1}, "weights.v1"),
        ({"v1": 0, "v2": 0}, "weights"),
        ({"v1": "half"}, "weights.v1"),
        ({}, "weights"),
    ],
)
def test_invalid_weights_are_refused_and_change_nothing(endpoint: LocalEndpoint, weights: dict, field: str) -> None:
    with endpoint.client() as client:
        before = client.describe()
        with pytest.raises(EndpointError) as refused:
            client.set_weights(weights)
        assert (refused.value.status, refused.value.field) == (400, field)
        assert client.describe().weights_generation == before.weights_generation
        assert load_state(endpoint.paths).weights == before.weights


def test_traffic_follows_the_weights(endpoint: LocalEndpoint) -> None:
    requests = 3000  # 8 x 375
    with FeedbackStore(endpoint.paths.feedback) as store:
        cursor = store.served_since(0).cursor
    with endpoint.client() as client:
        described = client.set_weights({"v1": 0.7, "v2": 0.3})
    assert described.weights == {"v1": 0.7, "v2": 0.3} and load_state(endpoint.paths).weights == described.weights

    def send(count: int) -> Counter[str]:
        with httpx.Client(base_url=endpoint.url, timeout=60) as http:  # keep-alive; cheaper than the async client
            return Counter(http.post("/invocations", json=REVIEW).headers[INVOKED_VARIANT] for _ in range(count))

    with ThreadPoolExecutor(8) as pool:
        served = sum(pool.map(send, [requests // 8] * 8), Counter())
    share = served["v2"] / requests
    assert abs(share - 0.3) < 4.5 * math.sqrt(0.3 * 0.7 / requests), served  # within sampling error
    with FeedbackStore(endpoint.paths.feedback) as store:  # what the store recorded, all in this generation
        counts = {(c.weights_generation, c.variant): c.requests for c in store.served_since(cursor).counts}
    assert counts == {(described.weights_generation, variant): n for variant, n in served.items()}


def test_feedback_is_idempotent_per_inference_id(endpoint: LocalEndpoint) -> None:
    with endpoint.client() as client:
        variant, [item] = client.invoke(REVIEW, target_variant="v1")
        with FeedbackStore(endpoint.paths.feedback) as store:
            cursor = store.rewards_since(0).cursor
        assert client.feedback(item["inference_id"], 1) == "recorded"
        assert client.feedback(item["inference_id"], 1) == "duplicate"
        with pytest.raises(EndpointError) as conflict:
            client.feedback(item["inference_id"], 0)
        assert (conflict.value.status, conflict.value.field) == (409, "reward")
        with pytest.raises(EndpointError) as unknown:
            client.feedback("never-served", 1)
        assert (unknown.value.status, unknown.value.field) == (404, "inference_id")
        for reward in (0.5, "1", None):
            with pytest.raises(EndpointError) as invalid:
                client.feedback(item["inference_id"], reward)  # type: ignore[arg-type]
            assert (invalid.value.status, invalid.value.field) == (400, "reward")
    with FeedbackStore(endpoint.paths.feedback) as store:
        batch = store.rewards_since(cursor)
    assert [(v.variant, v.model_version, v.successes, v.failures) for v in batch.variants] == [("v1", "1", 1, 0)]
    assert batch.cursor > cursor


def test_add_and_remove_variants_from_the_registry(endpoint: LocalEndpoint) -> None:
    with endpoint.client() as client:
        generation = client.describe().weights_generation
        added = client.add_variant(VariantSpec("1", 0.0, int8=True))
        assert [v.name for v in added.variants] == ["v1", "v2", "v1-int8"]
        assert added.weights_generation == generation + 1
        assert client.add_variant(VariantSpec("1", 0.0, int8=True)).weights_generation == generation + 1  # no-op
        variant, [item] = client.invoke(REVIEW, target_variant="v1-int8")
        assert (variant, item["model_version"]) == ("v1-int8", "1")
        with pytest.raises(EndpointError) as missing:
            client.add_variant(VariantSpec("99", 0.0))
        assert missing.value.status == 404
        with pytest.raises(EndpointError) as last_weight:
            client.set_weights({"v1": 0.0, "v2": 0.0, "v1-int8": 1.0})
            client.remove_variant("v1-int8")
        assert last_weight.value.status == 409
        client.set_weights({"v1": 0.5, "v2": 0.5, "v1-int8": 0.0})
        assert [v.name for v in client.remove_variant("v1-int8").variants] == ["v1", "v2"]
        with pytest.raises(EndpointError) as gone:
            client.remove_variant("v1-int8")
        assert gone.value.status == 404
        assert post(endpoint.url, REVIEW, **{TARGET_VARIANT: "v1-int8"}).status_code == 400


def test_a_restarted_server_serves_the_same_variants_and_keeps_the_feedback(endpoint: LocalEndpoint) -> None:
    with endpoint.client() as client:
        _, [item] = client.invoke(REVIEW)
        assert client.feedback(item["inference_id"], 0) == "recorded"
        before = client.describe()
    assert stop_server(endpoint.paths) and running_server(endpoint.paths) is None
    assert read_server_info(endpoint.paths) is None
    endpoint.url = start_server(endpoint.paths, port=0).url
    with endpoint.client() as client:
        after = client.describe()
        assert (after.weights, after.weights_generation) == (before.weights, before.weights_generation)
        assert client.feedback(item["inference_id"], 0) == "duplicate"
        with pytest.raises(EndpointError) as conflict:
            client.feedback(item["inference_id"], 1)
        assert conflict.value.status == 409
    specs = [VariantSpec(v.model_version, v.weight, v.int8) for v in before.variants]
    again = deploy(endpoint.paths, specs, endpoint.token, MODEL, port=0)  # the same variants again change nothing
    assert (again.address, again.weights_generation) == (endpoint.url, before.weights_generation)
    with FeedbackStore(endpoint.paths.feedback) as store:
        rewarded = {(v.variant, v.failures) for v in store.rewards_since(0).variants}
    assert (item["variant"], 1) in rewarded
