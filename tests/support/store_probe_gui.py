"""Start the whole app on $QUANTDESK_DATA_DIR (offscreen), let it settle, start a new chat as a
person would (File → New chat, a word typed), and print what is on screen as JSON.

Run by tests/app/test_store_matrix.py in a child process, so a crash (SIGABRT) is a result, not the
end of the test run: ``python -m tests.support.store_probe_gui``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _settle(app, seconds: float) -> None:  # noqa: ANN001 - QApplication
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    """Build, start, look, act, look again, shut down."""
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    from quantdesk.gui import build_app

    window, controller, _paths = build_app(argparse.Namespace(data_dir=None, files=[]))
    window.show()
    controller.start([])
    _settle(app, 2.0)
    seen = {
        "banner": window.banner.label.text() if window.banner.isVisible() else "",
        "chats": [c.title for c in window.chat_list.model.chats()],
        "library": sorted(e.path.name for e in window.library.model.entries()),
        "downloads": [i.files[0] for i in window.downloads_page.model.items()],
    }
    window.menu_actions["New chat"].trigger()
    window.chat.input.setPlainText("a draft")
    _settle(app, 0.5)
    seen["after_new_chat"] = len(window.chat_list.model.chats())
    controller.shutdown()
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
