"""Run the local endpoint in the foreground: ``python -m include.serving.server --data-root … --endpoint-name …``.

It serves the variants in ``state.json`` with uvicorn on ``--host`` (127.0.0.1 unless told otherwise)
and ``--port``; with ``--port-fallback`` a taken port is replaced by a free one.  Once every model is
loaded it writes ``server.json`` (pid, URL) and answers ``/ping``; on SIGTERM/SIGINT it finishes queued
requests, closes the feedback store and removes ``server.json``.  Normally started detached by
:func:`include.serving.control.start_server` (``make serve``, the endpoint hook).
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence

from include.atomic import replace_file
from include.config import load_settings
from include.serving.app import EndpointRuntime, ServerOptions, create_app
from include.serving.control import registry_model_uri
from include.serving.feedback import utc_now
from include.serving.state import DEFAULT_ENDPOINT_NAME, EndpointPaths, admin_token, load_state

LOG = logging.getLogger("reviewflow.endpoint")


def bind(host: str, port: int, fallback: bool) -> socket.socket:
    """A listening TCP socket on ``host:port`` (any free port if it is taken and ``fallback``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        if not (fallback and error.errno == errno.EADDRINUSE):
            sock.close()
            raise
        LOG.warning("port %d is taken; using a free port", port)
        sock.bind((host, 0))
    sock.listen(2048)
    return sock


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    defaults = ServerOptions()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=load_settings().data_root)
    parser.add_argument("--endpoint-name", default=DEFAULT_ENDPOINT_NAME)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=load_settings().endpoint_port, help="REVIEWFLOW_ENDPOINT_PORT")
    parser.add_argument("--port-fallback", action="store_true", help="take a free port if --port is taken")
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size, help="reviews per forward pass")
    parser.add_argument("--max-wait-ms", type=float, default=defaults.max_wait_ms, help="dynamic batching window")
    parser.add_argument("--no-batching", action="store_true", help="one forward pass per request")
    parser.add_argument("--max-request-items", type=int, default=defaults.max_request_items, help="reviews per request")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    import torch
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    paths = EndpointPaths.for_endpoint(args.data_root, args.endpoint_name)
    state = load_state(paths)
    if state is None:
        sys.exit(f"{paths.state} does not exist: deploy variants first (make serve, or the endpoint hook)")
    if args.threads:
        torch.set_num_threads(args.threads)
    options = ServerOptions(
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, batching=not args.no_batching,
        max_request_items=args.max_request_items, max_body_bytes=args.max_body_bytes,
    )
    token = admin_token(paths, load_settings().endpoint_token)
    runtime = EndpointRuntime(paths, state, options, token, registry_model_uri(paths.data_root))
    sock = bind(args.host, args.port, args.port_fallback)
    host, port = sock.getsockname()[:2]
    runtime.address = f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def announce() -> None:
        """Every model is loaded: make the server findable."""
        info = {"pid": os.getpid(), "url": runtime.address, "started_at": utc_now()}
        replace_file(paths.server, json.dumps(info).encode())
        LOG.info("endpoint %s serving on %s (%s)", args.endpoint_name, runtime.address, options)

    def retire() -> None:
        """Queued requests are answered and the store is closed: stop being findable."""
        if paths.server.is_file() and json.loads(paths.server.read_text()).get("pid") == os.getpid():
            paths.server.unlink()
        LOG.info("endpoint %s stopped", args.endpoint_name)

    app = create_app(runtime, on_ready=announce, on_stopped=retire)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", log_level="warning", access_log=False, timeout_graceful_shutdown=10,
    )
    # uvicorn drains and shuts the app down on SIGTERM/SIGINT, then re-raises the signal to exit.
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
