"""One loaded model and text generation from it (llama-cpp-python underneath).

An :class:`InferenceSession` is owned by exactly one thread for its whole
life. :meth:`InferenceSession.generate` is a generator of events; the caller
sets a :class:`threading.Event` to stop it, honoured before the next token.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from quantdesk.engine.chat.prompting import PromptPlan, oldest_turns, plan_prompt, without_turns
from quantdesk.engine.chat.reasoning import ANSWER, THINKING, ReasoningStyle, ReplySplitter
from quantdesk.engine.chat.templates import Message
from quantdesk.engine.chat.tools import TOOL_MARKERS, ToolCallSplitter, ToolRequest, tool_grammar
from quantdesk.engine.cluster.rpc import split_across_workers
from quantdesk.engine.errors import GenerationError, ModelLoadError, PromptTooLong
from quantdesk.engine.estimate.kv import KV_TYPES
from quantdesk.engine.estimate.load_plan import load_settings_for
from quantdesk.engine.events import (
    STOP_CONTEXT_FULL,
    STOP_EOS,
    STOP_LENGTH,
    STOP_USER,
    GenerationEvent,
    GenerationStats,
    PromptReady,
    ThinkingText,
    TokenText,
)
from quantdesk.engine.gguf.model_info import ModelReport, summarize
from quantdesk.engine.gguf.reader import read_header_cached
from quantdesk.engine.library.discovery import split_parts
from quantdesk.engine.llama.log import (
    import_llama_cpp,
    recent_errors,
    restore_default_logs,
    route_llama_logs,
)
from quantdesk.engine.llama.log_parse import load_failure_message
from quantdesk.engine.params import LoadSettings, SamplingSettings
from quantdesk.engine.run.generation import (
    Detokenizer,
    SamplerChain,
    TokenCache,
    end_of_generation,
)

MODE_CHAT = "chat"
MODE_COMPLETION = "completion"


class InferenceSession:
    """A model loaded into llama.cpp, ready to generate."""

    def __init__(self, path: Path, settings: LoadSettings, report: ModelReport, llama: object):
        self.path = path
        self.settings = settings
        self.report = report
        self._llama = llama
        self.context_used = 0
        self._is_eog = end_of_generation(llama._model.vocab)
        self._cache = TokenCache(llama._ctx.ctx, llama.n_batch)

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(
        cls, path: str | Path, settings: LoadSettings, *, verbose: bool = False,
        keep_stderr: bool = False,
    ) -> InferenceSession:
        """Validate the file's header strictly, then load it into llama.cpp.

        Raises InvalidGGUF for a malformed file and ModelLoadError when
        llama.cpp refuses it (unsupported architecture, not enough memory...).
        ``keep_stderr``: llama.cpp's log still goes to Python, but standard error is not
        silenced while loading (a model host process keeps an abort's own words).
        """
        path = Path(path)
        report = summarize(read_header_cached(path), path=path)
        llama_cpp = import_llama_cpp("models cannot be loaded")
        if settings.rpc_workers:  # split across RPC workers: "auto" layers by their memory
            settings = split_across_workers(settings, [read_header_cached(p)
                                                       for p in split_parts(path)])  # fmt: skip
        settings = load_settings_for(path, settings)  # "auto" GPU layers: what fits
        if verbose:
            restore_default_logs()  # probing the build (for "auto") routed them to Python
        else:
            route_llama_logs()
        n_ctx = settings.n_ctx
        if report.context_length and (n_ctx <= 0 or n_ctx > report.context_length):
            n_ctx = report.context_length
        threads = settings.resolved_threads()
        kv_type = KV_TYPES.get(settings.kv_type)
        if kv_type is None:
            raise ModelLoadError(
                f"Unknown KV cache type {settings.kv_type!r}; use one of {', '.join(KV_TYPES)}."
            )
        recent_errors()  # forget errors of earlier loads
        try:
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=min(settings.n_batch, n_ctx),
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=settings.n_gpu_layers,
                n_ubatch=settings.n_ubatch,
                flash_attn=settings.flash_attn,
                type_k=kv_type,
                type_v=kv_type,
                swa_full=settings.swa_full,
                tensor_split=list(settings.tensor_split) or None,
                verbose=verbose or keep_stderr,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            said = recent_errors()
            raise ModelLoadError(
                load_failure_message(path.name, said), details="\n".join([*said, str(exc)])
            ) from exc
        return cls(path, settings.with_(n_ctx=n_ctx), report, llama)

    def close(self) -> None:
        """Free the model and its context now rather than at garbage collection."""
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()

    # -- properties ------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """MODE_CHAT when the model has a chat template, else MODE_COMPLETION."""
        return MODE_CHAT if self.report.chat_template else MODE_COMPLETION

    @property
    def context_size(self) -> int:
        """Context length a conversation can use, in tokens (see :func:`usable_context`)."""
        return usable_context(self._require())

    def _require(self):  # noqa: ANN202 - llama_cpp.Llama, imported lazily
        if self._llama is None:
            raise GenerationError("The model was unloaded; load it again to continue.")
        return self._llama

    # -- generation ------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes with this model's tokenizer."""
        return len(self._require().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def plan(
        self,
        messages: Sequence[Message],
        prefill: str = "",
        raw: bool = False,
        enable_thinking: bool | None = None,
        tools: ToolRequest | None = None,
    ) -> PromptPlan:
        """The prompt text (and mode) the conversation turns into for this model; ``raw``: the
        last message as it is, without the chat template (a plain completion); ``tools``: the
        functions the reply may call."""
        llama = self._require()
        return plan_prompt(
            messages,
            chat_template=None if raw else self.report.chat_template,
            bos_token=_token_text(llama, llama.token_bos()),
            eos_token=_token_text(llama, llama.token_eos()),
            prefill=prefill,
            enable_thinking=enable_thinking,
            tools=tools,
        )

    def prompt_tokens(self, plan: PromptPlan) -> list[int]:
        """The tokens of ``plan``: its text as the plan says, then the reply so far as plain
        text (so that a reply quoting a special token's text cannot forge one)."""
        llama = self._require()
        tokens = llama.tokenize(
            plan.text.encode("utf-8"), add_bos=not plan.has_bos_text, special=plan.parse_special
        )
        if plan.prefill:
            tokens += llama.tokenize(plan.prefill.encode("utf-8"), add_bos=False, special=False)
        return tokens

    def generate(
        self,
        messages: Sequence[Message],
        sampling: SamplingSettings,
        stop: threading.Event,
        prefill: str = "",
        raw: bool = False,
        on_prepared: Callable[[], None] | None = None,
        thinking_apart: bool = False,
        tools: ToolRequest | None = None,
    ) -> Iterator[GenerationEvent]:
        """Stream the reply to ``messages``: TokenText events, then one GenerationStats.

        With ``prefill`` (the reply so far), the model continues that reply; only the new
        text is streamed. ``thinking_apart``: a reasoning model's thinking streams as
        ThinkingText, its markers left out (``chat.reasoning``); else the reply is the text
        as written; ``sampling.thinking`` False asks a template that can for no thinking.
        ``tools``: the functions the reply may call; its calls come as ToolCall events (and
        with a forced choice a grammar makes it call one, ``chat.tools``).
        ``on_prepared`` is called once the chat template has been rendered
        and the prompt tokenized, before any of it is evaluated (the model host's parent
        bounds that step's time).
        """
        llama = self._require()
        n_ctx = usable_context(llama)
        plan, tokens, dropped = self._fit_prompt(
            list(messages), n_ctx, sampling.max_tokens, prefill, raw,
            None if sampling.thinking else False, tools,
        )
        style = plan.reasoning if thinking_apart else None
        if plan.tool_format and (grammar := tool_grammar(tools, plan.tool_format)):
            sampling = sampling.with_(grammar=grammar)
        if on_prepared is not None:
            on_prepared()
        if len(tokens) >= n_ctx:
            raise PromptTooLong(
                f"The prompt is {len(tokens):,} tokens but the context holds {n_ctx:,}. "
                "Start a new chat, shorten the message, or load the model with a longer context."
            )
        budget = min(sampling.max_tokens, n_ctx - len(tokens))
        seed = sampling.seed if sampling.seed >= 0 else random.randrange(2**31)
        started = time.perf_counter()
        first_at: float | None = None
        thought_at: float | None = None  # the last of the thinking
        produced = evaluated = 0
        stop_reason = STOP_LENGTH if budget == sampling.max_tokens else STOP_CONTEXT_FULL
        if stop.is_set():
            stop_reason = STOP_USER
        else:
            ctx, vocab = llama._ctx.ctx, llama._model.vocab
            evaluated = self._cache.prefill(tokens)
            yield PromptReady(len(tokens), n_ctx)
            chain = SamplerChain(ctx, llama.n_vocab(), sampling, seed)
            markers = (style.markers if style else frozenset()) | (
                TOOL_MARKERS if plan.tool_format else frozenset())  # fmt: skip
            text = Detokenizer(vocab, markers)
            split = _Split(style, ToolCallSplitter(plan.tool_format, tools)
                           if tools is not None and plan.tool_format else None)  # fmt: skip
            try:
                while True:
                    token = chain.sample()
                    if first_at is None:
                        first_at = time.perf_counter()
                    if self._is_eog(token):
                        stop_reason = STOP_EOS
                        break
                    produced += 1
                    piece = text.feed(token)
                    if piece:
                        for event in split.feed(piece):
                            if isinstance(event, ThinkingText):
                                thought_at = time.perf_counter()
                            yield event
                    if produced >= budget:
                        break
                    if stop.is_set():
                        stop_reason = STOP_USER
                        break
                    self._cache.append(token)
            finally:
                chain.close()
            yield from split.feed(text.flush(), final=True)
        ended = time.perf_counter()
        self.context_used = len(tokens) + produced
        decode_s = ended - first_at if first_at is not None else 0.0
        yield GenerationStats(
            prompt_tokens=len(tokens),
            completion_tokens=produced,
            time_to_first_token_s=(first_at or ended) - started,
            total_s=ended - started,
            decode_tokens_per_s=(produced - 1) / decode_s if produced > 1 and decode_s > 0 else 0.0,
            stop_reason=stop_reason,
            context_used=self.context_used,
            context_size=n_ctx,
            dropped_messages=dropped,
            prompt_tokens_evaluated=evaluated,
            thinking_s=thought_at - first_at if thought_at and first_at else 0.0,
        )

    def _fit_prompt(
        self,
        messages: list[Message],
        n_ctx: int,
        max_tokens: int,
        prefill: str = "",
        raw: bool = False,
        enable_thinking: bool | None = None,
        tools: ToolRequest | None = None,
    ) -> tuple[PromptPlan, list[int], int]:
        """The prompt's plan and tokens, leaving out the fewest oldest turns that give a reply
        room.

        Returns them and how many messages were left out. The system prompt and the latest
        user message are always kept. How many turns go is found by bisection: a chat of
        thousands of messages is rendered a dozen times, not once per turn left out.
        """
        room_for_reply = min(max_tokens, max(16, n_ctx // 4))
        turns = oldest_turns(messages)

        def attempt(count: int) -> tuple[PromptPlan, list[int], int]:
            kept = without_turns(messages, turns[:count])
            plan = self.plan(kept, prefill, raw, enable_thinking, tools)
            return plan, self.prompt_tokens(plan), len(messages) - len(kept)

        def fits(found: tuple[PromptPlan, list[int], int]) -> bool:
            return len(found[1]) + room_for_reply <= n_ctx

        best = attempt(0)
        if fits(best) or not turns:
            return best
        low, high = 1, len(turns)
        best = attempt(high)  # the most that can go: if even that does not fit, so be it
        if not fits(best):
            return best
        while low < high:  # the fewest turns to leave out lie in [low, high]; best: high's
            middle = (low + high) // 2
            found = attempt(middle)
            if fits(found):
                high, best = middle, found
            else:
                low = middle + 1
        return best


class _Split:
    """The reply's text as events: all of it TokenText, or (with a reasoning style) the
    thinking as ThinkingText and the answer as TokenText; with tools, the answer's calls as
    ToolCall events."""

    def __init__(self, style: ReasoningStyle | None,
                 calls: ToolCallSplitter | None = None) -> None:  # fmt: skip
        self._splitter = ReplySplitter(style) if style is not None else None
        self._calls = calls

    def feed(self, text: str, final: bool = False) -> Iterator[GenerationEvent]:
        """The events ``text`` completes (``final``: the reply's last text)."""
        if self._splitter is None:
            parts = [(ANSWER, text)] if text else []
        else:
            parts = self._splitter.feed(text)
            if final:
                parts += self._splitter.flush()
        for kind, part in parts:
            if kind == THINKING:
                yield ThinkingText(part)
            elif self._calls is None:
                yield TokenText(part)
            else:
                yield from _answer_events(self._calls.feed(part))
        if final and self._calls is not None:
            yield from _answer_events(self._calls.flush())


def _answer_events(items: list) -> Iterator[GenerationEvent]:
    for item in items:
        yield TokenText(item) if isinstance(item, str) else item


def usable_context(llama) -> int:  # noqa: ANN001 - llama_cpp.Llama
    """Tokens a conversation may use: llama.cpp may round the context up (128 asked, 256
    given) but llama-cpp-python sizes its token buffer by what was asked; past that its next
    evaluation fails ("could not broadcast input array from shape (31,) into shape (22,)")."""
    return min(llama.n_ctx(), len(llama.input_ids))


def _token_text(llama, token: int) -> str:  # noqa: ANN001 - llama_cpp.Llama
    if token < 0:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace")
