"""Worker throughput against raw `model.generate`, measured side by side in one run.

Prints JSON: single-stream tokens/s of `model.generate` and of the worker's
stream (same model, same prompt, greedy, same token budget), and aggregate
tokens/s of the worker at several concurrency levels.

    python -m bench.worker                 # tiny GptOss (real vocabulary), CPU
    python -m bench.worker --shape 20b     # gpt-oss-20b dimensions, random bf16 weights, on the GPU
    python -m bench.worker --shape 20b --cuda-graphs on --concurrency 1 64
    python -m bench.worker --model PATH    # any local checkpoint
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from backend.harmony.codec import HarmonyCodec, PromptMessage, PromptSettings
from backend.harmony.vocab import load_encoding
from backend.serving.worker import ChatRequest, Worker
from bench.harness import run_together
from bench.models import build_20b, build_tiny
from bench.synthetic import CUDA_GRAPHS

PROMPT = "Explain, step by step, why the sky looks blue at noon and red at sunset."


def build_model(args):
    if args.model:
        from backend.engines.loader import load_model

        return load_model(args.model, "auto", "auto").model
    return build_20b() if args.shape == "20b" else build_tiny()


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else None


def raw_generate(model, ids, n):
    import torch

    x = torch.tensor([ids], device=model.device)
    model.generate(x, max_new_tokens=4, do_sample=False)  # warm-up
    t = time.perf_counter()
    out = model.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    return (out.shape[1] - len(ids)) / (time.perf_counter() - t)


def worker_run(worker, n, concurrency):
    """Aggregate tokens/s over `concurrency` simultaneous requests, and mean TTFT."""
    results = []

    def one(i):
        turns = [PromptMessage("user", f"{PROMPT} (variant {i})")]
        done = list(worker.submit(ChatRequest(turns, PromptSettings(), max_new_tokens=n)).events())[-1]
        results.append(done.stats)

    wall = run_together(one, [(i,) for i in range(concurrency)])
    tokens = sum(s.total_tokens for s in results)
    return {"concurrency": concurrency, "tokens": tokens, "aggregate_tok_s": round(tokens / wall, 1),
            "mean_ttft_ms": round(1000 * sum(s.ttft or 0 for s in results) / len(results), 1),
            "mean_stream_tok_s": round(sum(s.tokens_per_s or 0 for s in results) / len(results), 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--shape", choices=["tiny", "20b"], default="tiny")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-batch-tokens", type=int)
    parser.add_argument("--num-blocks", type=int)
    parser.add_argument("--cuda-graphs", choices=list(CUDA_GRAPHS), default="auto")
    parser.add_argument("--experts", help="transformers' experts implementation (grouped_mm, batched_mm, eager)")
    args = parser.parse_args()

    from backend.engines.transformers_engine import TransformersEngine

    codec = HarmonyCodec(load_encoding(ROOT / "data" / "vocab"))
    model = build_model(args)
    if args.experts:
        model.set_experts_implementation(args.experts)
    ids = codec.render([PromptMessage("user", PROMPT)], PromptSettings())
    engine = TransformersEngine(model, do_sample=False, max_batch_tokens=args.max_batch_tokens,
                                num_blocks=args.num_blocks, use_cuda_graph=CUDA_GRAPHS[args.cuda_graphs])
    worker = Worker(engine, codec, max_active=max(args.concurrency), max_waiting=0)
    for c in sorted({1, *args.concurrency}):  # warm-up at every level: CUDA graphs are captured
        worker_run(worker, args.tokens, c)     # per batch shape, the first time each is seen
    # Interleave raw generate and the worker's single stream: a busy machine
    # then slows both alike, and the median of the rounds is the figure.
    raws, singles = [], []
    for _ in range(args.rounds):
        raws.append(raw_generate(model, ids, args.tokens))
        singles.append(worker_run(worker, args.tokens, 1)["mean_stream_tok_s"])
    raw, single = statistics.median(raws), statistics.median(singles)
    runs = [worker_run(worker, args.tokens, c) for c in args.concurrency]
    engine.close()
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": str(model.device), "gpu": gpu_name(), "model": args.model or args.shape,
        "prompt_tokens": len(ids), "new_tokens": args.tokens, "cuda_graphs": args.cuda_graphs,
        "experts": model.config._experts_implementation, "attention": model.config._attn_implementation,
        "raw_generate_tok_s": round(raw, 1),
        "worker_single_stream_tok_s": single,
        "worker_vs_raw": round(single / raw, 3) if single else None,
        "runs": runs,
    }
    by_c = {r["concurrency"]: r["aggregate_tok_s"] for r in runs}
    if 1 in by_c and 8 in by_c:
        report["aggregate_8_vs_1"] = round(by_c[8] / by_c[1], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
