"""Plain settings objects for loading a model and sampling from it."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


def default_threads() -> int:
    """Threads for generation: the physical core count (hyperthreads slow llama.cpp down)."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except Exception:  # psutil may not know on exotic systems
        physical = None
    return max(1, physical or os.cpu_count() or 1)


#: ``LoadSettings.n_gpu_layers`` value asking for as many layers on the GPU as fit (resolved
#: before a load from the memory estimate and the free VRAM: :func:`recommend.resolve_gpu_layers`).
AUTO_GPU_LAYERS = -2


@dataclass(frozen=True)
class LoadSettings:
    """How a model is loaded: these need a reload to change."""

    n_ctx: int = 4096
    n_threads: int = 0  # 0 means default_threads()
    n_gpu_layers: int = AUTO_GPU_LAYERS  # -1: all, 0: none (CPU), -2: as many as fit
    # Tokens handed to llama.cpp per call when evaluating a prompt (llama.cpp's default): on
    # the starter with 2 threads a 2,048-token prompt runs 4 % faster than in 512-token calls.
    n_batch: int = 2048
    n_ubatch: int = 512  # micro-batch: 128 / 256 / 512 gave pp512 729 / 737 / 746 tok/s
    kv_type: str = "f16"  # KV cache type: "f16", "q8_0" or "q4_0" (quantized needs flash_attn)
    # On by default (llama-cpp-python's default is off): llama.cpp's CPU, CUDA and Metal
    # backends have it; +3 % decode and +2.5 % prompt speed on the starter with 2 CPU threads.
    flash_attn: bool = True
    # Sliding-window layers keep only their window (llama.cpp's own tools' default), not the
    # whole context as llama-cpp-python's default does: less memory and ~2 % faster decoding on
    # Gemma 3; a chat rewound to before the window is then evaluated again.
    swa_full: bool = False
    # llama.cpp RPC workers ("host:port") whose devices take the offloaded layers
    # (engine/cluster/rpc.py)
    rpc_workers: tuple[str, ...] = ()
    # share of the offloaded layers per device, in llama.cpp's device order (empty: by memory)
    tensor_split: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        # lists from JSON (a child process's settings) become tuples: hashable and comparable
        object.__setattr__(self, "rpc_workers", tuple(self.rpc_workers))
        object.__setattr__(self, "tensor_split", tuple(float(x) for x in self.tensor_split))

    def resolved_threads(self) -> int:
        """The thread count to hand to llama.cpp."""
        return self.n_threads if self.n_threads > 0 else default_threads()

    def with_(self, **changes: object) -> LoadSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SamplingSettings:
    """How tokens are picked: these apply to the next reply without a reload."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    seed: int = -1  # -1 means a new random seed per reply
    max_tokens: int = 512
    thinking: bool = True  # False: a template that can (Qwen3's) is asked for no thinking
    grammar: str = ""  # GBNF the reply must follow (structured output, chat.structured); "" none

    def with_(self, **changes: object) -> SamplingSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
