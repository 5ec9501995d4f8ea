"""The CLI's commands: what each sub-command is called and the module that implements it."""

from __future__ import annotations

from types import ModuleType

from quantdesk.cli import (
    chats,
    doctor,
    download,
    downloads,
    estimate,
    export,
    hw,
    import_chat,
    inspect,
    integrate,
    ladder,
    ls,
    quantize,
    quants,
    rpc_worker,
    run,
    search,
    serve,
    token,
)

COMMANDS: dict[str, ModuleType] = {  # in the help's order
    "inspect": inspect,
    "run": run,
    "hw": hw,
    "search": search,
    "quants": quants,
    "estimate": estimate,
    "download": download,
    "downloads": downloads,
    "quantize": quantize,
    "ls": ls,
    "chats": chats,
    "export": export,
    "import-chat": import_chat,
    "doctor": doctor,
    "integrate": integrate,
    "serve": serve,
    "rpc-worker": rpc_worker,
    "ladder": ladder,
    "token": token,
}
