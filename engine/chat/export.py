"""Export a saved chat to JSON or Markdown with a reproducibility block, and import JSON back.

The JSON format (``"format": "quantdesk-chat"``, ``"version": 2``) holds the chat's header,
every message as saved (role, text, thinking, created, model, stats, settings, complete) —
every version of every message: ``id`` and ``parent`` (ids within the file) give the tree,
``shown`` marks the branch shown (version 1 files hold that branch alone) — and a
``reproducibility`` block: the model file, its sha256 and quant type, the llama-cpp-python and
QuantDesk versions, and the sampling and load settings (seed included) of the last reply.
The block is read when exporting (the file's hash, the installed versions), not recorded when
each reply was generated; ``notes`` in it says where that matters.

Importing always creates a new chat. Preserved: the chat's title, pinned flag, system prompt
and model path, and each message's role, text, thinking (none from files written before it was
kept), created time, model, stats, settings and completeness. Not preserved: ids (the store
assigns them) and the chat's own created/updated times (the imported chat is new in this store,
so it is created and updated at import time).
The reproducibility block is derived data and is not imported.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from quantdesk.engine.chat.conversations import Chat, ConversationStore, StoredMessage
from quantdesk.engine.errors import QuantDeskError
from quantdesk.engine.events import saved_stats_summary
from quantdesk.engine.file_hash import file_sha256
from quantdesk.engine.version import __version__

FORMAT = "quantdesk-chat"
VERSION = 2
ROLES = ("user", "assistant", "system")
_HEADINGS = {"user": "**You**", "assistant": "**Assistant**", "system": "**System**"}
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class ChatNotFound(QuantDeskError):
    """No chat has the id asked for."""


class ChatImportError(QuantDeskError):
    """A file offered for import is not a QuantDesk chat this version can read."""


# -- model facts ---------------------------------------------------------------------------

def _quant_type(path: Path, notes: list[str]) -> str | None:
    from quantdesk.engine.gguf.model_info import summarize
    from quantdesk.engine.gguf.reader import read_header_from_file

    try:
        report = summarize(read_header_from_file(path), path=path)
    except QuantDeskError as exc:
        notes.append(f"The quant type could not be read from the model's header: {exc.message}")
        return None
    if report.file_type_guessed:
        notes.append("The quant type was guessed from the tensor types (no general.file_type).")
    return report.file_type


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def reproducibility(messages: list[StoredMessage], chat: Chat, *, hash_models: bool = True) -> dict:
    """The block that says how to reproduce the chat's last reply."""
    notes: list[str] = []
    replies = [m for m in messages if m.role == "assistant"]
    with_settings = [m for m in replies if m.settings]
    last = with_settings[-1] if with_settings else None
    model = next((m.model for m in reversed(replies) if m.model), "") or chat.model_path
    models = {m.model for m in replies if m.model}
    if len(models) > 1:
        notes.append(
            f"This chat used {len(models)} models; this block describes the last one "
            "(each message's 'model' names its own)."
        )
    sha256 = quant = None
    if not model:
        notes.append("No model is recorded for this chat.")
    elif not Path(model).is_file():
        notes.append(f"The model file is not there any more ({model}): no sha256 or quant type.")
    else:
        quant = _quant_type(Path(model), notes)
        if hash_models:
            sha256 = file_sha256(Path(model))
        else:
            notes.append("The model's sha256 was not computed for this export.")
    sampling = dict(last.settings.get("sampling") or {}) if last else None
    load = dict(last.settings.get("load") or {}) if last else None
    if last is None:
        notes.append("No reply records its settings.")
    elif sampling and sampling.get("seed", -1) == -1:
        notes.append(
            "Seed -1: each reply drew a random seed, which is not saved; set a fixed seed "
            "to make replies repeatable."
        )
    notes.append(
        "The sha256 and the versions were read at export time, not when the replies were "
        "generated; llama_cpp_version is the llama-cpp-python package's version."
    )
    return {
        "model_file": model or None,
        "model_sha256": sha256,
        "quant_type": quant,
        "llama_cpp_version": _package_version("llama_cpp_python"),
        "quantdesk_version": __version__,
        "sampling": sampling,
        "load": load,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notes": notes,
    }


# -- export --------------------------------------------------------------------------------


def _load(store: ConversationStore, chat_id: int) -> tuple[Chat, list[StoredMessage]]:
    try:
        chat = store.chat(chat_id)
    except KeyError:
        raise ChatNotFound(
            f"There is no chat {chat_id}; `quantdesk chats` lists the saved ones."
        ) from None
    return chat, store.messages(chat_id)


def export_json(store: ConversationStore, chat_id: int, *, hash_models: bool = True) -> dict:
    """A chat as a JSON-ready dict (see the module docstring for the format)."""
    chat, messages = _load(store, chat_id)
    shown = {m.id for m in messages}
    every = store.all_messages(chat_id)
    number = {m.id: i for i, m in enumerate(every, 1)}  # ids within the file
    return {
        "format": FORMAT,
        "version": VERSION,
        "chat": {
            "title": chat.title,
            "created": chat.created,
            "updated": chat.updated,
            "pinned": chat.pinned,
            "system_prompt": chat.system_prompt,
            "model_path": chat.model_path,
        },
        "messages": [
            {
                "id": number[m.id],
                "parent": number.get(m.parent_id) if m.parent_id is not None else None,
                "shown": m.id in shown,
                "version": m.version,
                "versions": m.versions,
                "role": m.role,
                "text": m.text,
                "thinking": m.thinking,  # a reasoning model's thinking, apart from its text
                "created": m.created,
                "model": m.model,
                "stats": m.stats,
                "settings": m.settings,
                "complete": m.complete,
            }
            for m in every
        ],
        "reproducibility": reproducibility(messages, chat, hash_models=hash_models),
    }


def _local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _close_open_fence(text: str) -> str:
    """Close a code fence a cut-off reply left open, so it cannot swallow what follows."""
    open_fence = None
    for line in text.splitlines():
        found = _FENCE.match(line)
        if not found:
            continue
        fence = found.group(1)
        if open_fence is None:
            open_fence = fence
        elif fence[0] == open_fence[0] and len(fence) >= len(open_fence):
            open_fence = None
    return text if open_fence is None else f"{text}\n{open_fence}"


def _value(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


def _markdown_message(m: StoredMessage, where: str = "") -> list[str]:
    """A message's heading (with its version when it has several), text and stats line."""
    heading = _HEADINGS.get(m.role, f"**{m.role}**")
    if m.versions > 1:
        heading += f" (version {m.version} of {m.versions}{', ' + where if where else ''})"
    parts = [heading]
    if m.thinking:  # marked as thinking: a quoted block under its own label
        quoted = "\n".join(f"> {line}" if line else ">" for line in m.thinking.splitlines())
        parts.append("> **Thinking**\n>\n" + quoted)
    parts.append(_close_open_fence(m.text) if m.text else "*(empty)*")
    if not m.complete:
        parts.append("*(reply cut off)*")
    elif m.role == "assistant" and (line := saved_stats_summary(m.stats)):
        parts.append(f"*{line}*")
    return parts


def export_markdown(store: ConversationStore, chat_id: int, *, hash_models: bool = True) -> str:
    """A chat as readable Markdown, ending with its reproducibility block."""
    chat, messages = _load(store, chat_id)
    parts = [f"# {chat.title}", f"*Started {_local_time(chat.created)}*"]
    if chat.system_prompt:
        parts += ["**System** (system prompt)", chat.system_prompt]
    for m in messages:
        parts += _markdown_message(m)
    others = [m for m in store.all_messages(chat_id) if m.id not in {s.id for s in messages}]
    if others:
        parts.append("## Other versions")
        parts.append("*Earlier edits and regenerated replies, with what followed them; "
                     "QuantDesk shows them with ‹ › on the message.*")  # fmt: skip
        place = {m.id: m.seq + 1 for m in messages}
        for m in others:
            place.setdefault(m.id, m.seq + 1)
            parts += _markdown_message(m, where=f"message {place[m.id]}")
    block = reproducibility(messages, chat, hash_models=hash_models)
    lines = [f"{key}: {_value(value)}" for key, value in block.items() if key != "notes"]
    lines += [f"note: {note}" for note in block["notes"]]
    parts += ["## Reproducibility", "```text\n" + "\n".join(lines) + "\n```"]
    return "\n\n".join(parts) + "\n"


# -- import --------------------------------------------------------------------------------


def _field(data: dict, key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ChatImportError(f"This chat file is incomplete: {where} has no '{key}'.")
    value = data[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise ChatImportError(f"This chat file is damaged: {where}'s '{key}' has the wrong type.")
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _optional(data: dict, key: str, kinds: type | tuple[type, ...], where: str,
              default: Any) -> Any:  # fmt: skip
    return _field(data, key, kinds, where) if key in data else default


def _check_header(data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ChatImportError(
            "This is not a QuantDesk chat export (no \"format\": \"quantdesk-chat\"). "
            "Export chats with QuantDesk's Export or `quantdesk export CHAT_ID --format json`."
        )
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ChatImportError("This chat file has no valid format version; it may be damaged.")
    if version > VERSION:
        raise ChatImportError(
            f"This chat was exported by a newer QuantDesk (format version {version}; this one "
            f"reads up to {VERSION}). Update QuantDesk to import it."
        )


def _messages(data: dict) -> list[dict[str, Any]]:
    raw = _field(data, "messages", list, "the file")
    checked = []
    for i, item in enumerate(raw, 1):
        where = f"message {i}"
        if not isinstance(item, dict):
            raise ChatImportError(f"This chat file is damaged: {where} is not an object.")
        role = _field(item, "role", str, where)
        if role not in ROLES:
            raise ChatImportError(
                f"This chat file is damaged: {where} has an unknown role {role!r}."
            )
        created = _optional(item, "created", (int, float), where, None)
        if created is not None and not math.isfinite(created):
            raise ChatImportError(f"This chat file is damaged: {where} has an invalid time.")
        checked.append({
            "id": _optional(item, "id", int, where, None),
            "parent": _optional(item, "parent", (int, type(None)), where, None),
            "shown": _optional(item, "shown", bool, where, True),
            "role": role,
            "text": _field(item, "text", str, where),
            "thinking": _optional(item, "thinking", str, where, ""),
            "created": created,
            "model": _optional(item, "model", str, where, ""),
            "stats": _optional(item, "stats", dict, where, {}),
            "settings": _optional(item, "settings", dict, where, {}),
            "complete": _optional(item, "complete", bool, where, True),
        })  # fmt: skip
    return checked


def _add_tree(store: ConversationStore, chat_id: int, messages: list[dict[str, Any]],
              linear: bool) -> None:  # fmt: skip
    """Add the messages with their versions; the branch marked shown is shown again."""
    new_ids: dict[int, int] = {}
    shown: list[int] = []
    for i, m in enumerate(messages):
        key = i if linear or m["id"] is None else m["id"]
        if linear or m["id"] is None:
            parent = new_ids.get(i - 1) if i else None
        elif m["parent"] is None:
            parent = None
        elif m["parent"] in new_ids:
            parent = new_ids[m["parent"]]
        else:
            raise ChatImportError(
                f"This chat file is damaged: message {i + 1} follows a message that is not "
                "before it in the file."
            )
        if key in new_ids:
            raise ChatImportError(f"This chat file is damaged: message id {key} is used twice.")
        new_ids[key] = store.add_message_after(
            chat_id, parent, m["role"], m["text"], model=m["model"], stats=m["stats"],
            settings=m["settings"], complete=m["complete"], created=m["created"],
            thinking=m["thinking"],
        )  # fmt: skip
        if m["shown"]:
            shown.append(new_ids[key])
    for message_id in shown:  # root first: each one is the version shown at its place
        store.select_version(message_id)


def import_json(store: ConversationStore, data: Any) -> Chat:
    """Create a new chat from an export; ChatImportError (nothing saved) when it is unusable."""
    _check_header(data)
    head = _field(data, "chat", dict, "the file")
    title = _field(head, "title", str, "the chat")
    system_prompt = _optional(head, "system_prompt", str, "the chat", "")
    model_path = _optional(head, "model_path", str, "the chat", "")
    pinned = _optional(head, "pinned", bool, "the chat", False)
    messages = _messages(data)
    chat = store.create_chat(title, system_prompt, model_path)
    try:
        if pinned:
            store.set_pinned(chat.id, True)
        _add_tree(store, chat.id, messages, linear=data["version"] == 1)
    except BaseException:
        store.delete_chat(chat.id)  # all or nothing
        raise
    return store.chat(chat.id)
