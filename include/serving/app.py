"""The local endpoint as a FastAPI app: the SageMaker container contract, feedback and an admin API.

Routes:

* ``GET /ping`` — 200 once every variant is loaded (SageMaker's health check).
* ``POST /invocations`` — one review or ``{"instances": [...]}`` (see :mod:`include.serving.inference`).
  The request goes to a variant drawn with probability ``weight / sum(weights)``, or to the variant named
  in ``X-Amzn-SageMaker-Target-Variant``; the answer names it in ``X-Amzn-Invoked-Production-Variant``
  and per item.  Concurrent requests to a variant share forward passes (:class:`MicroBatcher`).  Each
  served review is recorded in the feedback store before the answer goes out.
* ``POST /feedback`` ``{"inference_id", "reward"}`` — 201 recorded, 200 the same reward again, 409 a
  different reward for the id, 404 an id never served; committed durably before any 2xx.
* Admin (``Authorization: Bearer <token>``, 401 without it): ``GET /admin/endpoint`` (describe),
  ``POST /admin/weights`` ``{"weights": {variant: weight}}``, ``POST /admin/variants``
  ``{"model_version", "weight", "int8"}`` (from the registry), ``DELETE /admin/variants/{name}``.
  Changes are validated, persisted to ``state.json`` and then swapped in at once; each bumps
  ``weights_generation``.

Bad input gets a 4xx JSON body ``{"error": {"field", "message"}}``; an unexpected error a 500 with no
details (they go to the log); the server keeps serving either way.
"""

from __future__ import annotations

import asyncio
import bisect
import hmac
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.serving.batching import BatcherClosed, MicroBatcher
from include.serving.feedback import FeedbackStore, RewardOutcome, ServedPrediction, check_reward, utc_now
from include.serving.inference import (
    DEFAULT_MAX_ITEMS,
    JSON,
    ModelFolderError,
    Prediction,
    RequestError,
    ReviewClassifier,
    check_content_type,
    check_unicode,
    decode_json,
    parse_reviews,
    prediction_items,
)
from include.serving.state import EndpointPaths, EndpointState, LocalVariant, save_state
from include.serving.variants import INVOKED_VARIANT, TARGET_VARIANT, VariantSpec, WeightsError, updated_weights

LOG = logging.getLogger("reviewflow.endpoint")
MAX_INFERENCE_ID = 128


@dataclass(frozen=True)
class ServerOptions:
    """How the server batches and what it accepts.

    :param max_batch_size: reviews per forward pass.
    :param max_wait_ms: how long a waiting request waits for others to share its forward pass.
    :param batching: ``False``: one forward pass per request (the benchmark's baseline).
    :param max_request_items: reviews per request.
    :param max_body_bytes: request body size limit.
    """

    max_batch_size: int = 32
    max_wait_ms: float = 5.0
    batching: bool = True
    max_request_items: int = DEFAULT_MAX_ITEMS
    max_body_bytes: int = 1 << 20


class AdminAuthError(Exception):
    """No or a wrong bearer token on an admin route."""


class ConflictError(Exception):
    """A valid admin request that conflicts with the endpoint's state (409)."""


@dataclass
class ServedVariant:
    """A loaded variant: its spec, model and batcher, and how often it was invoked since start."""

    spec: LocalVariant
    classifier: ReviewClassifier
    batcher: MicroBatcher[str, Prediction]
    invocations: int = 0


@dataclass(frozen=True)
class _Routing:
    """An immutable snapshot of what traffic goes where (replaced whole on every change)."""

    state: EndpointState
    variants: dict[str, ServedVariant]
    cumulative: tuple[float, ...] = field(default=())

    @classmethod
    def of(cls, state: EndpointState, variants: dict[str, ServedVariant]) -> _Routing:
        running, cumulative = 0.0, []
        for variant in state.variants:
            running += variant.weight
            cumulative.append(running)
        return cls(state, variants, tuple(cumulative))

    def pick(self, target: str | None) -> ServedVariant:
        if target is not None:
            if target not in self.variants:
                known = sorted(self.variants)
                raise RequestError(TARGET_VARIANT, f"unknown variant {target!r}; the endpoint has {known}")
            return self.variants[target]
        index = bisect.bisect_right(self.cumulative, random.random() * self.cumulative[-1])
        return self.variants[self.state.variants[min(index, len(self.cumulative) - 1)].name]


class EndpointRuntime:
    """The served variants, their batchers, the feedback store and the admin operations.

    :param paths: the endpoint's files.
    :param state: the variants to serve at start.
    :param options: batching and request limits.
    :param token: the admin bearer token.
    :param resolve_model: registry version → model folder URI (used when a variant is added).
    """

    def __init__(
        self, paths: EndpointPaths, state: EndpointState, options: ServerOptions, token: str,
        resolve_model: Callable[[str, str], str],
    ) -> None:
        self.paths = paths
        self.options = options
        self.token = token
        self.resolve_model = resolve_model
        self._initial = state
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="feedback")
        self._store = FeedbackStore(paths.feedback)
        self._served_log = MicroBatcher(
            self._store.record_predictions, self._store_thread, max_items=4096, max_wait_s=0
        )
        self._rewards = MicroBatcher(self._store.record_rewards, self._store_thread, max_items=512, max_wait_s=0)
        self._admin = asyncio.Lock()
        self._routing: _Routing | None = None
        self.address = ""

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        loaded = {}
        for spec in self._initial.variants:
            loaded[spec.name] = await self._load(spec)
        self._routing = _Routing.of(self._initial, loaded)
        LOG.info("serving %s (weights generation %d)", self._initial.weights, self._initial.weights_generation)

    async def close(self) -> None:
        for variant in (self._routing.variants.values() if self._routing else ()):
            await variant.batcher.close()
        await self._served_log.close()
        await self._rewards.close()
        self._inference.shutdown()
        self._store_thread.shutdown()
        self._store.close()

    @property
    def routing(self) -> _Routing:
        if self._routing is None:
            raise RuntimeError("the endpoint has not started")
        return self._routing

    async def _load(self, spec: LocalVariant) -> ServedVariant:
        classifier = await asyncio.to_thread(ReviewClassifier.load, spec.model_uri.removeprefix("file://"), spec.int8)
        batch = self.options.max_batch_size if self.options.batching else 1
        batcher = MicroBatcher(classifier.predict, self._inference, batch, self.options.max_wait_ms / 1000)
        LOG.info("loaded variant %s: model version %s%s from %s",
                 spec.name, spec.model_version, " (int8)" * spec.int8, spec.model_uri)
        return ServedVariant(spec, classifier, batcher)

    # --- traffic ----------------------------------------------------------------------------

    async def invoke(self, texts: list[str], target: str | None) -> tuple[ServedVariant, list[dict[str, Any]]]:
        """Predict ``texts`` on a drawn (or the target) variant; record what was served; return the items."""
        for _ in range(2):  # a variant removed between drawing it and queueing on it: draw again
            routing = self.routing
            variant = routing.pick(target)
            try:
                predictions = await variant.batcher.submit(texts)
                break
            except BatcherClosed:
                continue
        else:
            raise RequestError(TARGET_VARIANT, "the variant was removed while the request waited", 503)
        items = prediction_items(predictions, variant.spec.name, variant.spec.model_version)
        request_id, served_at = uuid.uuid4().hex, utc_now()
        generation = routing.state.weights_generation
        await self._served_log.submit([
            ServedPrediction(item["inference_id"], request_id, variant.spec.name, variant.spec.model_version,
                             generation, served_at, item["label"])
            for item in items
        ])
        variant.invocations += 1
        return variant, items

    async def feedback(self, inference_id: str, reward: int) -> RewardOutcome:
        [outcome] = await self._rewards.submit([(inference_id, reward)])
        return outcome

    # --- admin ------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        routing = self.routing
        invocations = {name: variant.invocations for name, variant in routing.variants.items()}
        return routing.state.describe("InService", self.address, invocations).to_dict()

    async def _commit(self, state: EndpointState, variants: dict[str, ServedVariant]) -> None:
        """Persist ``state``, then switch traffic to it in one assignment."""
        await asyncio.to_thread(save_state, self.paths, state)
        self._routing = _Routing.of(state, variants)
        LOG.info("weights generation %d: %s", state.weights_generation, state.weights)

    async def set_weights(self, changes: dict[str, object]) -> None:
        async with self._admin:
            routing = self.routing
            weights = updated_weights(routing.state.weights, changes)
            await self._commit(routing.state.with_weights(weights), routing.variants)

    async def add_variant(self, spec: VariantSpec) -> bool:
        """Load and add the variant (``False``: it is already there, nothing changed)."""
        async with self._admin:
            routing = self.routing
            if spec.name in routing.variants:
                return False
            model_uri = await asyncio.to_thread(self.resolve_model, routing.state.model_name, spec.model_version)
            local = LocalVariant(spec.name, spec.model_version, model_uri, spec.int8, spec.weight)
            try:
                served = await self._load(local)
            except ModelFolderError as error:
                message = f"version {spec.model_version} cannot be served: {error}"
                raise RequestError("body.model_version", message, 422) from None
            state = routing.state.with_variants((*routing.state.variants, local))
            await self._commit(state, {**routing.variants, spec.name: served})
            return True

    async def remove_variant(self, name: str) -> None:
        """:raises KeyError: unknown variant. :raises ConflictError: the last variant, or the last one with weight."""
        async with self._admin:
            routing = self.routing
            if name not in routing.variants:
                raise KeyError(name)
            kept = tuple(variant for variant in routing.state.variants if variant.name != name)
            if not kept:
                raise ConflictError(f"{name} is the endpoint's only variant")
            if not any(variant.weight for variant in kept):
                raise ConflictError(f"every other variant has weight 0: give one a weight before removing {name}")
            remaining = {key: value for key, value in routing.variants.items() if key != name}
            await self._commit(routing.state.with_variants(kept), remaining)
            # Requests already queued on the removed variant are answered before its batcher stops.
            asyncio.get_running_loop().create_task(routing.variants[name].batcher.close())


# ---------------------------------------------------------------- HTTP


async def read_body(request: Request, limit: int) -> bytes:
    """The request body. :raises RequestError: (413) past ``limit`` bytes, checked before and while reading."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError("Content-Length", f"is not a number: {declared!r}")
        if int(declared) > limit:
            raise RequestError("body", f"has {declared} bytes, at most {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError("body", f"has more than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status_code=status, media_type=JSON, headers=headers)


def _object(value: object, field: str = "body") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def create_app(
    runtime: EndpointRuntime, on_ready: Callable[[], None] = lambda: None, on_stopped: Callable[[], None] = lambda: None
) -> FastAPI:
    """The FastAPI app serving ``runtime``, started and closed by the app's lifespan.

    ``on_ready`` runs once every variant is loaded, ``on_stopped`` after the runtime closed on shutdown.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        on_ready()
        yield
        await runtime.close()
        on_stopped()

    app = FastAPI(title="reviewflow endpoint", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    limits = runtime.options

    def require_admin(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), runtime.token.encode()):
            raise AdminAuthError()

    async def request_object(request: Request) -> dict[str, Any]:
        check_content_type(request.headers.get("content-type"))
        return _object(decode_json(await read_body(request, limits.max_body_bytes)))

    @app.exception_handler(RequestError)
    async def request_error(request: Request, error: RequestError) -> Response:
        return _json(error.to_dict(), error.status)

    @app.exception_handler(WeightsError)
    async def weights_error(request: Request, error: WeightsError) -> Response:
        field, _, message = str(error).partition(": ")
        return _json({"error": {"field": field, "message": message}}, 400)

    @app.exception_handler(AdminAuthError)
    async def auth_error(request: Request, error: AdminAuthError) -> Response:
        return _json({"error": {"field": "Authorization", "message": "a valid bearer token is required"}}, 401,
                     {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ConflictError)
    async def conflict_error(request: Request, error: ConflictError) -> Response:
        return _json({"error": {"field": "variant", "message": str(error)}}, 409)

    @app.exception_handler(StarletteHTTPException)
    async def routing_error(request: Request, error: StarletteHTTPException) -> Response:
        """No such route (404) or method (405): the same error body as every other 4xx."""
        field = {404: "path", 405: "method"}.get(error.status_code, "request")
        message = f"{request.method} {request.url.path}: {error.detail}"
        return _json({"error": {"field": field, "message": message}}, error.status_code, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> Response:
        LOG.exception("%s %s failed", request.method, request.url.path)
        return _json({"error": {"field": None, "message": "internal error (see the server log)"}}, 500)

    @app.get("/ping")
    async def ping() -> Response:
        return _json({"status": "Healthy"})

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        check_content_type(request.headers.get("content-type"))
        texts = parse_reviews(decode_json(await read_body(request, limits.max_body_bytes)), limits.max_request_items)
        variant, items = await runtime.invoke(texts, request.headers.get(TARGET_VARIANT))
        return _json({"predictions": items}, headers={INVOKED_VARIANT: variant.spec.name})

    @app.post("/feedback")
    async def feedback(request: Request) -> Response:
        body = await request_object(request)
        inference_id = body.get("inference_id")
        if not isinstance(inference_id, str) or not inference_id or len(inference_id) > MAX_INFERENCE_ID:
            raise RequestError("inference_id", f"must be a non-empty string of at most {MAX_INFERENCE_ID} characters")
        check_unicode("inference_id", inference_id)
        if "reward" not in body:
            raise RequestError("reward", "is required")
        try:
            reward = check_reward(body["reward"])
        except ValueError as error:
            raise RequestError("reward", str(error).removeprefix("reward: ")) from None
        outcome = await runtime.feedback(inference_id, reward)
        if outcome is RewardOutcome.UNKNOWN:
            raise RequestError("inference_id", f"{inference_id!r} was never served by this endpoint", 404)
        if outcome is RewardOutcome.CONFLICT:
            raise RequestError("reward", f"{inference_id!r} already has the other reward", 409)
        answer = {"inference_id": inference_id, "reward": reward, "status": outcome.value}
        return _json(answer, 201 if outcome is RewardOutcome.RECORDED else 200)

    @app.get("/admin/endpoint")
    async def describe(request: Request) -> Response:
        require_admin(request)
        return _json(runtime.describe())

    @app.post("/admin/weights")
    async def set_weights(request: Request) -> Response:
        require_admin(request)
        weights = (await request_object(request)).get("weights")
        await runtime.set_weights(_object(weights, "weights"))
        return _json(runtime.describe())

    @app.post("/admin/variants")
    async def add_variant(request: Request) -> Response:
        require_admin(request)
        try:
            spec = VariantSpec.from_dict(await request_object(request), "body")
        except ValueError as error:
            field, _, message = str(error).partition(": ")
            raise RequestError(field, message) from None
        try:
            added = await runtime.add_variant(spec)
        except KeyError as error:
            message = f"registry has no version {spec.model_version}: {error}"
            raise RequestError("body.model_version", message, 404) from None
        return _json(runtime.describe(), 201 if added else 200)

    @app.delete("/admin/variants/{name}")
    async def remove_variant(name: str, request: Request) -> Response:
        require_admin(request)
        try:
            await runtime.remove_variant(name)
        except KeyError:
            raise RequestError("variant", f"unknown variant {name!r}", 404) from None
        return _json(runtime.describe())

    return app

