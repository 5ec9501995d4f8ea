"""Typed engine errors, each carrying a message a person understands.

Every error the engine raises on purpose derives from :class:`QuantDeskError`.
``message`` says what happened and what to do next; ``details`` holds the
technical text (shown behind an expander in the GUI, printed with --verbose).
"""

from __future__ import annotations


class QuantDeskError(Exception):
    """Base class of all errors QuantDesk reports to the user."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidGGUF(QuantDeskError):
    """A file (or a byte prefix of one) is not a well-formed GGUF model.

    ``offset`` is the byte offset at which the problem was found, or None when
    the problem is not tied to one place in the file.
    """

    def __init__(self, message: str, offset: int | None = None, details: str = "") -> None:
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message, details)
        self.offset = offset


class NeedMoreBytes(QuantDeskError):
    """The header continues past the bytes given; fetch at least ``needed`` bytes and retry.

    Raised only when the caller said the whole file is longer than the prefix
    it handed over (a remote header read through HTTP range requests).
    """

    def __init__(self, needed: int) -> None:
        super().__init__(f"The GGUF header needs at least {needed} bytes; read more of the file.")
        self.needed = needed


class ModelLoadError(QuantDeskError):
    """llama.cpp could not load a model (bad file, not enough memory, unsupported architecture)."""


class GenerationError(QuantDeskError):
    """Text generation failed after the model was loaded."""


class ModelStopped(GenerationError):
    """The model's host process ended (llama.cpp crashed, or a limit stopped it): the model is
    gone until it is loaded again; the app and what was already streamed are not."""


class PromptTooLong(GenerationError):
    """The prompt alone fills the model's context (the API answers 400, as OpenAI's does)."""


class ToolError(GenerationError):
    """Tools, a tool choice or a conversation with tool calls that cannot be used."""


class TemplateError(QuantDeskError):
    """A chat template could not be rendered safely."""


class LlamaBuildError(QuantDeskError):
    """The installed llama.cpp build is missing or crashes on this CPU."""


class ImportRejected(QuantDeskError):
    """A file offered for the library was refused (not a GGUF, unreadable, duplicate...)."""


class HardwareProbeError(QuantDeskError):
    """A hardware probe could not read what it looks for (tool missing, hung, odd output)."""


class EstimateError(QuantDeskError):
    """Memory could not be estimated for these load parameters (invalid or unsupported)."""


class SimulationError(QuantDeskError):
    """llama.cpp's own dry-run load (no weights) failed or crashed."""


class HubError(QuantDeskError):
    """Talking to the model hub (Hugging Face or a mirror set by HF_ENDPOINT) failed."""


class HubUnreachable(HubError):
    """The hub could not be reached (no network, refused, timed out, offline mode, server down)."""


class RepoNotFound(HubError):
    """The hub has no such repository, revision or file (HTTP 404)."""


class AuthRequired(HubError):
    """The repository is gated or private and needs an access token (HTTP 401/403)."""


class DownloadFailed(QuantDeskError):
    """A download could not complete (the part downloaded so far is kept for a resume)."""


class HashMismatch(DownloadFailed):
    """Downloaded bytes do not match the Hub's sha256; the damaged part was deleted."""


class InsufficientDiskSpace(DownloadFailed):
    """Not enough free disk space to finish a download.

    ``needed`` and ``free`` are in bytes when known (the pre-check); a disk that filled up
    mid-write leaves them None.
    """

    def __init__(
        self, message: str, details: str = "", *, needed: int | None = None, free: int | None = None
    ) -> None:
        super().__init__(message, details)
        self.needed = needed
        self.free = free


class QuantizeError(QuantDeskError):
    """Quantizing a model failed (bad source, bad options, llama.cpp refused or crashed)."""


class QuantizeCancelled(QuantizeError):
    """The user cancelled a quantization; no partial output was left behind."""


class ImatrixError(QuantizeError):
    """An importance-matrix file is missing, malformed or does not match the model."""
