"""One QuantDesk per data folder: a second launch hands its files to the running window.

The first instance listens on a local socket (QLocalServer: a Unix socket, a Windows named pipe)
named after the user and the data folder; a later launch connects, sends the files it was given
(one JSON line) and exits once the first instance answered. Instances with different
``--data-dir`` folders are separate apps and do not see each other.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtNetwork import QLocalServer, QLocalSocket

CONNECT_TIMEOUT_MS = 500
ANSWER_TIMEOUT_MS = 3000
MAX_MESSAGE = 1 << 20  # a request is a list of paths: anything longer is not from QuantDesk


def server_name(data_dir: Path) -> str:
    """The socket name for one user and data folder (short: Unix socket paths are limited)."""
    key = f"{getpass.getuser()}|{data_dir.resolve()}".encode()
    return f"quantdesk-{hashlib.sha256(key).hexdigest()[:16]}"


def hand_over(data_dir: Path, files: Sequence[Path]) -> bool:
    """Give ``files`` to a QuantDesk already running on ``data_dir``; True when one took them
    (this launch should then exit), False when none is running."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(data_dir))
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return False
    message = json.dumps({"files": [str(Path(f).resolve()) for f in files]}) + "\n"
    socket.write(message.encode("utf-8"))
    socket.flush()
    answered = socket.waitForReadyRead(ANSWER_TIMEOUT_MS) and socket.readLine().data() == b"ok\n"
    socket.disconnectFromServer()
    return answered


class InstanceServer(QObject):
    """Listens for later launches; calls ``on_files(paths)`` (GUI thread) for each request."""

    def __init__(self, data_dir: Path, on_files: Callable[[list[Path]], None]) -> None:
        super().__init__()
        self._on_files = on_files
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        name = server_name(data_dir)
        if not self._server.listen(name):
            QLocalServer.removeServer(name)  # a socket left behind by a crashed instance
            self._server.listen(name)
        self._server.newConnection.connect(self._accept)

    @property
    def listening(self) -> bool:
        """Whether later launches can reach this instance."""
        return self._server.isListening()

    def close(self) -> None:
        """Stop listening (the socket file is removed)."""
        self._server.close()

    def _accept(self) -> None:
        while (socket := self._server.nextPendingConnection()) is not None:
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(socket.deleteLater)

    def _read(self, socket: QLocalSocket) -> None:
        if not socket.canReadLine():
            if socket.bytesAvailable() > MAX_MESSAGE:
                socket.abort()
            return
        try:
            request = json.loads(socket.readLine().data().decode("utf-8"))
            files = [Path(p) for p in request.get("files", []) if isinstance(p, str)]
        except (ValueError, AttributeError):
            socket.abort()
            return
        socket.write(b"ok\n")
        socket.flush()
        self._on_files(files)
