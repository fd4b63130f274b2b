"""A stand-in Alertmanager webhook receiver, run as its own process by the tests: every
POST body is appended as one line to OUT; the port it listens on goes to PORT_FILE."""

from __future__ import annotations

import http.server
import signal
import sys
from pathlib import Path


def main() -> None:
    out, port_file = Path(sys.argv[1]), Path(sys.argv[2])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with out.open("ab") as sink:
                sink.write(body.replace(b"\n", b" ") + b"\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port_file.with_suffix(".tmp").write_text(str(server.server_address[1]), encoding="utf-8")
    port_file.with_suffix(".tmp").rename(port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
