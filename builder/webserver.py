"""`python -m builder.webserver`: Daphne, refusing a request body over its limit before it is
read. `shipyard up` serves the app with it; it takes Daphne's arguments.

Daphne (through Twisted) reads a whole body, to a temporary file, and then queues all of it
for the app, in memory, before the app sees the request: a POST declaring 4 GiB was read in
full, grew the process by gigabytes and stalled every other request, all before the app
could answer 413. Here each request checks its declared length as soon as its headers end,
and counts a body sent without one (chunked) as it arrives; past the limit of its path it
answers 413 itself and closes the connection, reading nothing more.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import daphne.server
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest

from builder.graphs.middleware import body_limit, too_large


class BoundedRequest(WebRequest):
    """Daphne's request, with a body limit (builder.graphs.middleware.body_limit)."""

    refused = False
    limit = 0
    what = ""

    def gotLength(self, length: int | None) -> None:
        """Called when the headers have ended and the body is still unread."""
        # Twisted parses the request line into the channel, and the request's own path only
        # once the whole body is in.
        path = self.channel._path.split(b"?", 1)[0]
        self.limit, self.what = body_limit(unquote(path.decode("ascii", "replace")))
        if length is not None and length > self.limit:
            super().gotLength(0)
            self.refuse(length)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        if self.content.tell() + len(data) > self.limit:
            self.refuse(None)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A refused body may still end within data that had already arrived: no app for it.
        if not self.refused:
            super().requestReceived(command, path, version)

    def refuse(self, length: int | None) -> None:
        """Answer 413 (JSON, like the app's own) and close: what was sent is never read."""
        self.refused = True
        body = json.dumps({"error": too_large(length, self.limit, self.what)}).encode()
        # No "100 Continue" after this answer for a client that asked for one.
        self.requestHeaders.removeHeader(b"Expect")
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        self.channel.loseConnection()


class BoundedHTTPFactory(HTTPFactory):
    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BoundedRequest
        return protocol


def main() -> None:
    # Daphne's Server.run() makes its HTTP factory from this module-level name and has no
    # setting for another request class.
    daphne.server.HTTPFactory = BoundedHTTPFactory
    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
