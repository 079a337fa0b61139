"""``make serve`` / ``make stop``: run the local endpoint serving the registry's champion, or stop it.

``python -m include.serving serve [--port N]`` starts the endpoint detached and returns: a fresh one
serves the champion (weight 1); one deployed before serves its saved variants again.  It prints the URL,
where the admin token is, and an example request.  ``python -m include.serving stop`` stops it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from include.config import load_settings
from include.registry.base import DEFAULT_MODEL_NAME
from include.serving.control import deploy, running_server, start_server, stop_server
from include.serving.state import DEFAULT_ENDPOINT_NAME, EndpointPaths, admin_token, load_state
from include.serving.variants import VariantSpec

EXAMPLE = """curl -s {url}/invocations -H 'Content-Type: application/json' \\
     -d '{{"review_headline": "Great", "review_body": "Works as described."}}'"""


def serve(paths: EndpointPaths, port: int, model_name: str) -> int:
    settings = load_settings()
    token = admin_token(paths, settings.endpoint_token)
    if running_server(paths) is None and load_state(paths) is None:
        from include.registry.mlflow_registry import MlflowModelRegistry

        champion = MlflowModelRegistry.for_data_root(paths.data_root, model_name).champion()
        if champion is None:
            print(f"The registry under {paths.data_root} has no champion of {model_name} yet: run `make run` first.")
            return 1
        print(f"Deploying the champion, {model_name} v{champion.version} …")
        deploy(paths, [VariantSpec(champion.version, 1.0)], token, model_name, port)
    info = start_server(paths, port)
    print(f"Endpoint {paths.endpoint_name} serving on {info.url} (pid {info.pid}, log {paths.log})")
    with_token = "REVIEWFLOW_ENDPOINT_TOKEN" if settings.endpoint_token else str(paths.token)
    print(f"  admin token      {with_token}")
    state = load_state(paths)
    for variant in state.variants if state else ():
        print(f"  variant {variant.name:<8} model version {variant.model_version}, weight {variant.weight:g}")
    print(f"  feedback store   {paths.feedback}")
    print("Try:\n" + EXAMPLE.format(url=info.url) + "\nStop it with `make stop`.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("serve", "stop"))
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT_NAME)
    parser.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    parser.add_argument("--port", type=int, default=load_settings().endpoint_port,
                        help="preferred port, a free one if it is taken (default: REVIEWFLOW_ENDPOINT_PORT)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if settings.backend != "local":
        print("make serve/stop run the local endpoint; with REVIEWFLOW_BACKEND=aws the rollout deploys a SageMaker "
              "endpoint.")
        return 1
    paths = EndpointPaths.for_endpoint(settings.data_root, args.endpoint_name)
    if args.command == "serve":
        return serve(paths, args.port, args.model_name)
    stopped = stop_server(paths)
    print(f"Endpoint {paths.endpoint_name} stopped." if stopped else f"Endpoint {paths.endpoint_name} was not running.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
