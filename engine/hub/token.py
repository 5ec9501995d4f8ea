"""The Hugging Face access token a person saves in QuantDesk (Preferences or ``quantdesk token``).

It goes to the desktop's secret store through ``keyring`` (macOS Keychain, Windows Credential
Locker, the Secret Service of GNOME Keyring or KWallet on Linux) when one answers, else to a
file only the user can read (mode 0600) in QuantDesk's config folder. It never enters
settings.json and is never logged. ``PYTHON_KEYRING_BACKEND`` (keyring's own variable) picks
or disables the secret store.

The saved token comes first; without one, ``huggingface_hub``'s own (``HF_TOKEN`` or
``hf auth login``) is used, as every Hugging Face tool does.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import get_token

from quantdesk.engine.errors import QuantDeskError

log = logging.getLogger(__name__)

SERVICE = "QuantDesk"
ACCOUNT = "huggingface-token"
TOKEN_FILE_NAME = "hf-token"
MAX_TOKEN_CHARS = 512


class TokenRefused(QuantDeskError):
    """The text given is not an access token, or it could not be saved anywhere."""


@dataclass(frozen=True)
class SavedToken:
    """A token QuantDesk holds and, in words, where it is kept."""

    token: str
    place: str

    @property
    def hint(self) -> str:
        """The token's last four characters, enough to recognise it, never the whole."""
        return "…" + self.token[-4:]


def check_token(text: str) -> str:
    """The token in ``text`` (spaces around it dropped); TokenRefused when it cannot be one."""
    token = text.strip()
    if not token:
        raise TokenRefused(
            "The access token is empty: paste it from huggingface.co/settings/tokens."
        )
    if len(token) > MAX_TOKEN_CHARS or any(c.isspace() or not c.isprintable() for c in token):
        raise TokenRefused(
            "That is not an access token: a token is one word of letters and digits "
            "(it starts with hf_). Copy it again from huggingface.co/settings/tokens."
        )
    return token


def environment_token_source() -> str | None:
    """Where ``huggingface_hub`` would find a token without QuantDesk's, in words; else None."""
    if os.environ.get("HF_TOKEN", "").strip():
        return "the HF_TOKEN environment variable"
    try:
        found = get_token()
    except Exception:  # noqa: BLE001 - an unreadable token file is no token
        return None
    return "your `hf auth login`" if found else None


class TokenStore:
    """Save, read and remove QuantDesk's Hugging Face token (keyring first, else ``file``)."""

    def __init__(self, file: Path) -> None:
        self.file = Path(file)

    # -- the desktop's secret store ----------------------------------------------------------

    @staticmethod
    def _keyring_name() -> str | None:
        """The secret store's name when one is usable here, else None."""
        try:
            import keyring
            from keyring.backends import fail

            backend = keyring.get_keyring()
        except Exception:  # noqa: BLE001 - no usable keyring is an answer, not an error
            return None
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return None
        return getattr(backend, "name", type(backend).__name__)

    def _keyring_get(self) -> str | None:
        if self._keyring_name() is None:
            return None
        try:
            import keyring

            return keyring.get_password(SERVICE, ACCOUNT)
        except Exception as exc:  # noqa: BLE001 - a locked or absent store: use the file
            log.info("the desktop's secret store did not answer (%s)", type(exc).__name__)
            return None

    def _keyring_set(self, token: str) -> str | None:
        name = self._keyring_name()
        if name is None:
            return None
        try:
            import keyring

            keyring.set_password(SERVICE, ACCOUNT, token)
        except Exception as exc:  # noqa: BLE001 - fall back to the file
            log.info("the desktop's secret store refused the token (%s)", type(exc).__name__)
            return None
        return name

    def _keyring_delete(self) -> None:
        if self._keyring_name() is None:
            return
        try:
            import keyring

            keyring.delete_password(SERVICE, ACCOUNT)
        except Exception:  # noqa: BLE001, S110 - nothing stored there is fine
            pass

    # -- the file ------------------------------------------------------------------------------

    def _file_place(self) -> str:
        return f"a file only you can read ({self.file})"

    def _file_get(self) -> str | None:
        try:
            mode = self.file.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                os.chmod(self.file, 0o600)  # someone widened it: only the user reads a secret
            text = self.file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("could not read the saved Hugging Face token file: %s", type(exc).__name__)
            return None
        return text or None

    def _file_set(self, token: str) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        part = self.file.with_name(self.file.name + ".part")
        part.unlink(missing_ok=True)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, token.encode("utf-8") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, self.file)

    # -- public --------------------------------------------------------------------------------

    def load(self) -> SavedToken | None:
        """The saved token and where it is kept, or None when none is saved."""
        token = self._keyring_get()
        if token:
            return SavedToken(token, f"the desktop's keyring ({self._keyring_name()})")
        token = self._file_get()
        return SavedToken(token, self._file_place()) if token else None

    def save(self, text: str) -> SavedToken:
        """Check and keep ``text`` as the token: the keyring when it answers, else the file."""
        token = check_token(text)
        name = self._keyring_set(token)
        if name is not None:
            self.file.unlink(missing_ok=True)  # one copy only, in the safer place
            return SavedToken(token, f"the desktop's keyring ({name})")
        try:
            self._file_set(token)
        except OSError as exc:
            raise TokenRefused(
                f"Could not save the token: {exc.strerror or exc} ({self.file.parent})."
            ) from exc
        return SavedToken(token, self._file_place())

    def clear(self) -> None:
        """Forget the saved token, in the keyring and in the file."""
        self._keyring_delete()
        try:
            self.file.unlink(missing_ok=True)
        except OSError as exc:
            raise TokenRefused(f"Could not remove {self.file}: {exc.strerror or exc}.") from exc
