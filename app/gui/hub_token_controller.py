"""Preferences → Hugging Face: the token page, the token store and the hub client kept in step."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from quantdesk.engine.hub.client import HubClient
from quantdesk.engine.hub.token import (
    SavedToken,
    TokenRefused,
    TokenStore,
    environment_token_source,
)
from quantdesk.ui.settings.hub_token_page import HubTokenPage


class HubTokenController(QObject):
    """Saves or removes the token the user gives on the page; the hub sends it from then on.

    ``changed(words)`` follows each save or removal, saying what happened (for a banner).
    """

    changed = Signal(str)

    def __init__(self, store: TokenStore, hub: HubClient) -> None:
        super().__init__()
        self.store = store
        self.hub = hub

    def page(self) -> HubTokenPage:
        """A new token page showing what is saved now (the caller gives it a parent)."""
        page = HubTokenPage()
        self._show(page, self.store.load())
        page.saveRequested.connect(lambda text: self._save(page, text))
        page.removeRequested.connect(lambda: self._remove(page))
        return page

    def _show(self, page: HubTokenPage, saved: SavedToken | None) -> None:
        if saved is None:
            page.show_saved(None, None, environment_token_source())
        else:
            page.show_saved(saved.hint, saved.place, None)

    def _save(self, page: HubTokenPage, text: str) -> None:
        try:
            saved = self.store.save(text)
        except TokenRefused as exc:
            page.show_refusal(exc.message)
            return
        self.hub.set_token(saved.token)
        self._show(page, saved)
        self.changed.emit(f"Access token {saved.hint} saved in {saved.place}: the hub gets it "
                          "from now on.")  # fmt: skip

    def _remove(self, page: HubTokenPage) -> None:
        try:
            self.store.clear()
        except TokenRefused as exc:
            page.show_refusal(exc.message)
            return
        self.hub.set_token(None)
        self._show(page, None)
        self.changed.emit("The saved access token was removed.")
