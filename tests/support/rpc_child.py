"""A greedy reply from a model loaded locally or split across RPC workers, in a process of its
own (llama.cpp aborts the process that talks to a worker that goes away).

    python -m tests.support.rpc_child MODEL [WORKER ...] --layers N --tokens N

Prints one JSON line: the reply's text, its token count and tokens/s. llama.cpp's load log
(with each device's buffer sizes) goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import threading

from quantdesk.engine.chat.templates import Message
from quantdesk.engine.events import GenerationStats, TokenText
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.session import InferenceSession

PROMPT = "The lighthouse keeper climbed the stairs every evening because"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("workers", nargs="*")
    parser.add_argument("--layers", type=int, default=0)
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    split = tuple(1.0 for _ in args.workers)
    load = LoadSettings(n_ctx=512, n_threads=2, n_gpu_layers=args.layers,
                        rpc_workers=tuple(args.workers), tensor_split=split)  # fmt: skip
    session = InferenceSession.load(args.model, load, verbose=True)
    sampling = SamplingSettings(temperature=0.0, max_tokens=args.tokens, seed=1)
    events = list(session.generate([Message("user", PROMPT)], sampling, threading.Event(),
                                   raw=True))  # fmt: skip
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    text = "".join(e.text for e in events if isinstance(e, TokenText))
    print(json.dumps({"text": text, "tokens": stats.completion_tokens,
                      "tok_s": stats.decode_tokens_per_s}), flush=True)  # fmt: skip
    session.close()


if __name__ == "__main__":
    main()
