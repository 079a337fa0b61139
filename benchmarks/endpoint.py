"""Endpoint benchmark: requests/s and latency over real HTTP, dynamic batching, and int8 quantisation.

1. A model is fine-tuned with train.py on a generated, balanced sample (a shorter budget than ``make run``),
   so the numbers are for a real MiniLM classifier.
2. Quality: test macro-F1 of that model in fp32 and with int8 Linear layers, scored through the serving
   code (:class:`include.serving.inference.ReviewClassifier`) on the same test rows → ``int8_macro_f1_drop``.
3. HTTP on loopback: two local endpoint servers on the model — one with dynamic batching, one with one
   forward pass per request — each holding an fp32 variant (``v1``) and an int8 one (``v1-int8``, reached
   with the target-variant header).  Closed-loop clients (each sends its next request when the answer
   arrives) at 1, 8 and 32 concurrent clients, single reviews and batches of 32, from real review texts.
   ``dynamic_batching_speedup`` = requests/s with batching ÷ without (32 clients, single reviews);
   ``int8_speedup`` = int8 ÷ fp32 requests/s on the batching server (32 clients, single reviews).  The pairs
   alternate ``--rounds`` times and the best of each side counts (docs/benchmarks.md).

The load generator is one asyncio process speaking HTTP/1.1 over keep-alive sockets with pre-encoded
requests: ≈ 0.1 ms of CPU per request, where httpx's async client needs ≈ 1–3 ms, which on 2 cores would
take a large share of the CPU from the server.  Its CPU share (and the server's) is reported per scenario.

Writes ``benchmarks/results/endpoint.json``.  Run: ``python benchmarks/endpoint.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "endpoint.json"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from training import run_train  # noqa: E402 - the training benchmark's in-process train.py runner


def request_bytes(host: str, port: int, payload: object, variant: str) -> bytes:
    body = json.dumps(payload).encode()
    head = (f"POST /invocations HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"X-Amzn-SageMaker-Target-Variant: {variant}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def client(
    host: str, port: int, requests: list[bytes], offset: int, stop_at: float, latencies: list[float]
) -> None:
    """One keep-alive connection sending requests back to back until ``stop_at``; records each latency."""
    reader, writer = await asyncio.open_connection(host, port)
    sent = offset
    while time.perf_counter() < stop_at:
        started = time.perf_counter()
        writer.write(requests[sent % len(requests)])
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        if status.split()[1] != b"200":
            raise RuntimeError(f"the endpoint answered {status!r}")
        latencies.append(time.perf_counter() - started)
        sent += 1
    writer.close()
    await writer.wait_closed()


def run_load(url: str, requests: list[bytes], clients: int, seconds: float, server_pid: int) -> dict[str, Any]:
    """``clients`` closed-loop connections for ``seconds`` (after 1 s of warm-up); rates, latencies, CPU shares."""
    import numpy as np
    import psutil

    host, port = url.removeprefix("http://").rsplit(":", 1)

    async def load(duration: float) -> list[float]:
        latencies: list[float] = []
        stop_at = time.perf_counter() + duration
        await asyncio.gather(*(client(host, int(port), requests, i * 7, stop_at, latencies) for i in range(clients)))
        return latencies

    asyncio.run(load(1.0))
    server = psutil.Process(server_pid)
    server_cpu, client_cpu, started = sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
    latencies = asyncio.run(load(seconds))
    wall = time.perf_counter() - started
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return {
        "clients": clients, "requests": len(latencies), "seconds": round(wall, 2),
        "requests_per_s": len(latencies) / wall, "p50_ms": float(p50), "p99_ms": float(p99),
        "client_cpu_share": (time.process_time() - client_cpu) / wall,  # of one core
        "server_cpu_share": (sum(server.cpu_times()[:2]) - server_cpu) / wall,
    }


def macro_f1(classifier: Any, texts: list[str], labels: list[int], batch: int = 32) -> float:
    """Test macro-F1 through the serving code."""
    from include.training.sourcedir.finetune.metrics import classification_metrics

    predicted = [p.label for start in range(0, len(texts), batch)
                 for p in classifier.predict(texts[start : start + batch])]
    names = list(classifier.label_names)
    return classification_metrics(labels, [names.index(label) for label in predicted], names)["macro_f1"]


def forward_rates(models: dict[str, tuple[Any, int]], texts: list[str], rounds: int) -> dict[str, float]:
    """Reviews/s of in-process forward passes (no HTTP) per ``name: (classifier, batch size)``.

    The models alternate ``rounds`` times; the best of each counts.
    """
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, (classifier, batch) in models.items():
            chosen = texts[: 64 if batch == 1 else 512]
            started = time.perf_counter()
            for start in range(0, len(chosen), batch):
                classifier.predict(chosen[start : start + batch])
            best[name] = max(best.get(name, 0.0), len(chosen) / (time.perf_counter() - started))
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import pyarrow.parquet as pq

    from include.features.splits import SplitPlan
    from include.serving.control import start_server, stop_server
    from include.serving.inference import ReviewClassifier
    from include.serving.state import EndpointPaths, EndpointState, LocalVariant, save_state
    from include.training.sample_features import write_sample_features

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="generated reviews")
    parser.add_argument("--train-rows", type=int, default=2000, help="fine-tuning rows (one epoch)")
    parser.add_argument("--test-rows", type=int, default=1500, help="test rows scored in fp32 and int8")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per HTTP scenario")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of each compared pair")
    parser.add_argument("--threads", type=int, default=0, help="the servers' torch threads (0: torch's default)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        work = Path(tmp)
        features = write_sample_features(work / "features", args.rows, plan=SplitPlan(0.05, 0.6, 0.05), balance=True)
        hyper = ["--max_seq_length", "64", "--epochs", "1", "--max_train_samples", str(args.train_rows),
                 "--checkpoint_steps", "100000"]
        training = run_train(features, work / "train", hyper, ("train",))["training"]
        model_dir = work / "train" / "model"
        test = pq.read_table(features / "test", columns=["text", "label"]).to_pydict()
        texts, labels = test["text"][: args.test_rows], test["label"][: args.test_rows]

        fp32, int8 = ReviewClassifier.load(model_dir), ReviewClassifier.load(model_dir, int8=True)
        fp32_f1, int8_f1 = macro_f1(fp32, texts, labels), macro_f1(int8, texts, labels)
        forward = forward_rates({"fp32_batch_1": (fp32, 1), "fp32_batch_32": (fp32, 32), "int8_batch_32": (int8, 32)},
                                texts, args.rounds)
        del fp32, int8

        variants = (LocalVariant("v1", "1", str(model_dir), False, 1.0),
                    LocalVariant("v1-int8", "1", str(model_dir), True, 0.0))
        servers = {}
        threads = ["--threads", str(args.threads)] if args.threads else []
        for name, extra in (("batching", threads), ("unbatched", [*threads, "--no-batching"])):
            paths = EndpointPaths.for_endpoint(work, f"bench-{name}")
            save_state(paths, EndpointState(paths.endpoint_name, "bench", variants, 1))
            servers[name] = (paths, start_server(paths, port=0, server_args=extra))
        try:
            def scenario(server: str, variant: str, clients: int, batch: int) -> dict[str, Any]:
                _, info = servers[server]
                host, port = info.url.removeprefix("http://").rsplit(":", 1)
                reviews = [{"review_body": text} for text in texts]
                payloads = reviews if batch == 1 else [
                    {"instances": reviews[i : i + batch]} for i in range(0, len(reviews) - batch, batch)
                ]
                requests = [request_bytes(host, int(port), payload, variant) for payload in payloads]
                result = run_load(info.url, requests, clients, args.seconds, info.pid)
                result |= {"server": server, "variant": variant, "batch": batch,
                           "reviews_per_s": result["requests_per_s"] * batch}
                print(f"{server:>9} {variant:>7} {clients:>2} clients x {batch:>2}: "
                      f"{result['requests_per_s']:7.1f} req/s, p50 {result['p50_ms']:7.1f} ms, "
                      f"p99 {result['p99_ms']:7.1f} ms, client CPU {result['client_cpu_share']:.2f}",
                      flush=True)
                return result

            scenarios: dict[str, dict[str, Any]] = {}
            for clients in (1, 8, 32):
                for batch in (1, 32):
                    scenarios[f"clients_{clients}_batch_{batch}"] = scenario("batching", "v1", clients, batch)
            pairs = {"unbatched": [], "batched": [], "int8": []}
            for _ in range(args.rounds):  # the compared sides alternate; the best of each counts
                pairs["unbatched"].append(scenario("unbatched", "v1", 32, 1))
                pairs["batched"].append(scenario("batching", "v1", 32, 1))
                pairs["int8"].append(scenario("batching", "v1-int8", 32, 1))
            best = {side: max(runs, key=lambda r: r["requests_per_s"]) for side, runs in pairs.items()}
            scenarios["clients_32_batch_1_unbatched"] = best["unbatched"]
            scenarios["clients_32_batch_1_int8"] = best["int8"]
            scenarios["clients_32_batch_32_int8"] = scenario("batching", "v1-int8", 32, 32)
        finally:
            for paths, _ in servers.values():
                stop_server(paths)

    result = {
        "dynamic_batching_speedup": best["batched"]["requests_per_s"] / best["unbatched"]["requests_per_s"],
        "dynamic_batching_speedup_target": 2.0,
        # p99 latency of the two runs the speedup divides (the sweep's clients_32_batch_1 is another run).
        "dynamic_batching_p99_ms": {side: best[side]["p99_ms"] for side in ("batched", "unbatched")},
        "int8_speedup": best["int8"]["requests_per_s"] / best["batched"]["requests_per_s"],
        "int8_speedup_target": 1.5,
        "int8_macro_f1_drop": fp32_f1 - int8_f1,
        "int8_macro_f1_drop_target": 0.01,
        "macro_f1_fp32": fp32_f1,
        "macro_f1_int8": int8_f1,
        # In-process forward passes (no HTTP): the ceilings of both speedups on this machine.
        "forward_reviews_per_s": {**forward, "batch_32_speedup": forward["fp32_batch_32"] / forward["fp32_batch_1"],
                                  "int8_speedup": forward["int8_batch_32"] / forward["fp32_batch_32"]},
        "scenarios": scenarios,
        "rounds": {side: [round(r["requests_per_s"], 1) for r in runs] for side, runs in pairs.items()},
        "setup": {
            "generated_rows": args.rows, "train_rows": training["train_rows"], "test_rows": len(texts),
            "train_seconds": training["train_seconds"], "max_seq_length": 64, "seconds_per_scenario": args.seconds,
            "server": "uvicorn (uvloop, httptools), 1 process; inference on one thread",
            "torch_threads": args.threads or "default",
            "max_batch_size": 32, "max_wait_ms": 5.0, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    keys = ("dynamic_batching_speedup", "int8_speedup", "int8_macro_f1_drop", "macro_f1_fp32", "macro_f1_int8")
    print(json.dumps({k: result[k] for k in keys}, indent=2))
    return result


if __name__ == "__main__":
    main()
