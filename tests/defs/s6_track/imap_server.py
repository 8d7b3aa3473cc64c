"""A tiny IMAP4rev1 server for tests: just enough for imaplib's LOGIN, EXAMINE/SELECT, UID SEARCH, UID FETCH, LOGOUT."""

from __future__ import annotations

import shlex
import socketserver
import threading


class Mailbox:
    def __init__(self, user: str, password: str, uidvalidity: int = 42):
        self.user, self.password, self.uidvalidity = user, password, uidvalidity
        self.messages: list[tuple[int, bytes]] = []
        self.commands: list[str] = []

    def add(self, raw: bytes) -> int:
        uid = (self.messages[-1][0] if self.messages else 0) + 1
        self.messages.append((uid, raw))
        return uid


def _uids(spec: str, uids: list[int]) -> list[int]:
    """An IMAP UID set such as `3:*` or `5`; `n:*` always includes the last message (RFC 3501)."""
    found: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition(":")
        top = max(uids, default=0)
        lo = top if low == "*" else int(low)
        hi = lo if not high else (top if high == "*" else int(high))
        lo, hi = min(lo, hi), max(lo, hi)
        found |= {u for u in uids if lo <= u <= hi}
    return sorted(found)


def serve(mailbox: Mailbox) -> tuple[socketserver.ThreadingTCPServer, int]:
    class Handler(socketserver.StreamRequestHandler):
        def send(self, text: str | bytes) -> None:
            self.wfile.write(text.encode() if isinstance(text, str) else text)

        def handle(self) -> None:
            self.send("* OK IMAP4rev1 test server ready\r\n")
            authed = False
            for line in self.rfile:
                tag, _, rest = line.decode().rstrip("\r\n").partition(" ")
                words = shlex.split(rest)
                command = words[0].upper() if words else ""
                mailbox.commands.append(command if command != "UID" else f"UID {words[1].upper()}")
                if command == "CAPABILITY":
                    self.send(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
                elif command == "LOGIN":
                    authed = words[1:3] == [mailbox.user, mailbox.password]
                    self.send(f"{tag} OK logged in\r\n" if authed else f"{tag} NO [AUTHENTICATIONFAILED] bad credentials\r\n")
                elif not authed and command != "LOGOUT":
                    self.send(f"{tag} BAD log in first\r\n")
                elif command in ("SELECT", "EXAMINE"):
                    self.send(f"* {len(mailbox.messages)} EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY {mailbox.uidvalidity}] UIDs valid\r\n"
                              f"{tag} OK [READ-ONLY] done\r\n")
                elif command == "UID" and words[1].upper() == "SEARCH":
                    spec = words[-1]
                    found = _uids(spec, [u for u, _ in mailbox.messages])
                    self.send(f"* SEARCH {' '.join(map(str, found))}\r\n{tag} OK done\r\n".replace("SEARCH \r", "SEARCH\r"))
                elif command == "UID" and words[1].upper() == "FETCH":
                    by_uid = dict(mailbox.messages)
                    for seq, (uid, raw) in enumerate(mailbox.messages, start=1):
                        if uid in _uids(words[2], list(by_uid)):
                            self.send(f"* {seq} FETCH (UID {uid} BODY[] {{{len(raw)}}}\r\n".encode() + raw + b")\r\n")
                    self.send(f"{tag} OK done\r\n")
                elif command == "LOGOUT":
                    self.send(f"* BYE bye\r\n{tag} OK done\r\n")
                    return
                else:
                    self.send(f"{tag} BAD unknown command\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
