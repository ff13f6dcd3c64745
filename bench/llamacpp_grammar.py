"""What holding an answer to a schema costs llama.cpp: the same harmony prompt to `llama-server`'s
/completion with and without the app's grammar of the whole completion (backend/harmony/gbnf.py), in
alternating rounds, greedy, and llama.cpp's own time per generated token each way (JSON, with the ratio
and the milliseconds the grammar adds per token).

    llama-server -m demo.gguf --port 8099 &   # e.g. the demo model converted by llama.cpp's convert_hf_to_gguf.py
    python -m bench.llamacpp_grammar --base-url http://127.0.0.1:8099 [--rounds 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["city", "sunny", "note"],
          "properties": {"city": {"enum": ["Paris", "Rome"]}, "sunny": {"type": "boolean"},
                         "note": {"type": "string", "maxLength": 40}}}
ROOT = Path(__file__).resolve().parent.parent
PROMPT, MAX_TOKENS = "Is it sunny in Paris?", 300


def prompt_ids(codec) -> list[int]:
    from backend.harmony.codec import PromptMessage, PromptSettings

    return codec.render([PromptMessage("user", PROMPT)], PromptSettings(effort="high"))


def one(client, url: str, ids: list[int], grammar: str | None) -> dict:
    body = {"prompt": ids, "n_predict": MAX_TOKENS, "temperature": 0.0, "cache_prompt": False,
            **({"grammar": grammar} if grammar else {})}
    answer = client.post(url + "/completion", json=body, timeout=600).json()
    return {"ms_per_token": answer["timings"]["predicted_per_token_ms"], "tokens": answer["tokens_predicted"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True, help="llama-server's root URL")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    import httpx

    from backend.harmony.codec import HarmonyCodec
    from backend.harmony.structured import FinalAnswerSpec, ResponseFormat
    from backend.harmony.vocab import load_encoding

    codec = HarmonyCodec(load_encoding(ROOT / "data" / "vocab"))
    ids, grammar = prompt_ids(codec), FinalAnswerSpec(ResponseFormat(schema=SCHEMA)).gbnf()
    runs = {"plain": [], "grammar": []}
    with httpx.Client() as client:
        one(client, args.base_url, ids, grammar)  # warm-up
        for _ in range(args.rounds):
            runs["plain"].append(one(client, args.base_url, ids, None))
            runs["grammar"].append(one(client, args.base_url, ids, grammar))
    median = {k: statistics.median(r["ms_per_token"] for r in v) for k, v in runs.items()}
    print(json.dumps({"rounds": args.rounds, "ms_per_token": median,
                      "tokens": {k: [r["tokens"] for r in v] for k, v in runs.items()},
                      "ratio_grammar_to_plain": round(median["grammar"] / median["plain"], 3),
                      "added_ms_per_token": round(median["grammar"] - median["plain"], 2)}, indent=1))


if __name__ == "__main__":
    main()
