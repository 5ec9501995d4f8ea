"""``quantdesk run FILE --prompt TEXT``: generate text, streamed to stdout."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from quantdesk.engine.errors import QuantDeskError

NAME = "run"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sub-command's parser."""
    run = sub.add_parser(NAME, help="Generate text from a GGUF model, streamed to stdout.")
    run.add_argument("file", type=Path)
    run.add_argument("--prompt", required=True, help="Text to continue (or chat message).")
    run.add_argument("-n", "--max-tokens", type=int, default=128)
    run.add_argument("--ctx", type=int, default=4096, help="Context length in tokens.")
    run.add_argument("--threads", type=int, default=0, help="0 = physical cores.")
    run.add_argument("--gpu-layers", type=int, default=-2,
                     help="Layers on the GPU: -2 = as many as fit (default), -1 = all, 0 = none.")
    run.add_argument("--temperature", type=float, default=0.8)
    run.add_argument("--seed", type=int, default=-1)
    run.add_argument("--json", action="store_true",
                     help="Print one JSON object at the end (a reasoning model's thinking in "
                          "its own field, \"thinking\").")
    run.add_argument("--json-schema", type=Path, metavar="FILE",
                     help="Hold the reply to a JSON document valid against this JSON Schema "
                          "(a grammar constrains sampling, so it always parses).")
    run.add_argument("--no-thinking", action="store_true",
                     help="Ask a model whose template can (Qwen3) to answer without thinking.")
    run.add_argument("--no-probe", action="store_true", help="Skip the child-process test load.")
    run.add_argument("--verbose", action="store_true", help="Show llama.cpp's own log on stderr.")


def run(args: argparse.Namespace) -> int:
    """Load the model (after a child-process test load) in its host process and stream the
    reply; llama.cpp crashing there is an error message, never this command's own crash."""
    from quantdesk.config.paths import resolve_paths
    from quantdesk.engine.chat.prompting import COMPLETION_MODE_NOTICE
    from quantdesk.engine.chat.templates import Message
    from quantdesk.engine.errors import ModelStopped
    from quantdesk.engine.estimate.load_plan import load_settings_for
    from quantdesk.engine.events import GenerationStats, ThinkingText, TokenText
    from quantdesk.engine.params import LoadSettings, SamplingSettings
    from quantdesk.engine.run.model_process import ModelProcess
    from quantdesk.engine.run.probe import ProbeCache, probe_load, raise_for_probe
    from quantdesk.engine.run.session import MODE_COMPLETION

    if args.max_tokens < 1 or args.ctx < 1:
        raise QuantDeskError("-n and --ctx must be positive numbers.")
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    else:
        quiet = logging.getLogger("quantdesk.llama_cpp")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    load = load_settings_for(args.file, LoadSettings(
        n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers
    ))  # fmt: skip
    if not args.no_probe:
        cache = ProbeCache(resolve_paths().probe_cache)
        raise_for_probe(probe_load(args.file, load, cache=cache))
    session = ModelProcess.load(args.file, load)  # llama.cpp runs (and may crash) in a child
    if session.mode == MODE_COMPLETION and not args.json:
        print(f"[{COMPLETION_MODE_NOTICE}]", file=sys.stderr)
    sampling = SamplingSettings(
        temperature=args.temperature, seed=args.seed, max_tokens=args.max_tokens,
        thinking=not args.no_thinking, grammar=_schema_grammar(args.json_schema),
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pieces: list[str] = []
    thinking: list[str] = []
    stats: GenerationStats | None = None
    show = _Shown(sys.stdout, quiet=args.json)
    try:
        for event in session.generate([Message("user", args.prompt)], sampling, stop,
                                      thinking_apart=True):
            if isinstance(event, ThinkingText):
                thinking.append(event.text)
                show.thinking(event.text)
            elif isinstance(event, TokenText):
                pieces.append(event.text)
                show.answer(event.text)
            elif isinstance(event, GenerationStats):
                stats = event
    except ModelStopped:
        if pieces and not args.json:
            sys.stdout.write("\n")  # the error goes on a line of its own
        raise
    finally:
        show.end()
        session.close()
    if args.json:
        print(json.dumps({"mode": session.mode, "thinking": "".join(thinking).strip(),
                          "text": "".join(pieces), "stats": asdict(stats)}))
    else:
        sys.stdout.write("\n")
        if stats is not None:
            print(f"[{stats.summary()}]", file=sys.stderr)
    return 0


def _schema_grammar(path: Path | None) -> str:
    """The grammar of ``--json-schema FILE`` ("" without it); a file that is not a usable
    JSON Schema is an error that says why."""
    if path is None:
        return ""
    from quantdesk.engine.chat.structured import grammar_for_schema

    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise QuantDeskError(f"The JSON Schema file {path} cannot be read: "
                             f"{exc.strerror}.") from exc
    except ValueError as exc:
        raise QuantDeskError(f"{path} is not JSON: {exc}.") from exc
    return grammar_for_schema(schema)


class _Shown:
    """Writes the reply as it streams: a reasoning model's thinking dimmed on a terminal, under
    a heading ("Thinking:", then "Answer:") elsewhere; nothing with ``quiet`` (--json)."""

    DIM, PLAIN = "\x1b[2m", "\x1b[0m"

    def __init__(self, out, quiet: bool) -> None:  # noqa: ANN001 - a text stream
        self.out, self.quiet = out, quiet
        self.terminal = out.isatty()
        self._in = ""  # "thinking" or "answer": what is being written now
        self._pending = ""  # the thinking's whitespace at its end so far

    def thinking(self, text: str) -> None:
        """A piece of the thinking."""
        self._write("thinking", text)

    def answer(self, text: str) -> None:
        """A piece of the answer."""
        self._write("answer", text)

    def _write(self, part: str, text: str) -> None:
        if self.quiet:
            return
        if part != self._in:
            if self._in:  # from the thinking on to the answer
                self.out.write((self.PLAIN if self.terminal else "") + "\n\n")
            if self.terminal:
                self.out.write(self.DIM if part == "thinking" else "")
            elif part == "thinking" or self._in:  # a reply without thinking has no heading
                self.out.write(f"{part.capitalize()}:\n")
            self._in = part
        if part == "thinking":  # its trailing blank lines are not written before the answer
            text = self._pending + text
            kept = text.rstrip()
            self._pending = text[len(kept):]
            text = kept
        self.out.write(text)
        self.out.flush()

    def end(self) -> None:
        """The reply ended: the terminal's colours as they were."""
        if self.terminal and self._in == "thinking" and not self.quiet:
            self.out.write(self.PLAIN)
