"""A stand-in for a trainer's ``GET /progress``: serves a settable document, counts reads.

The operator's process tests and the progress benchmark point jobs at it
(through ``REKINDLE_TRAINER_ADDRESS_DIR``) instead of running trainers.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rekindle_trainer.contract.live import PROGRESS_PATH, LiveProgress


class ProgressStub:
    """One listening port answering ``/progress`` with :attr:`doc` (None: 503, no answer).

    ``status`` other than 200 answers that status instead (404: a trainer without the
    endpoint).
    """

    def __init__(self, doc: LiveProgress | None = None, status: int = 200) -> None:
        self.doc = doc
        self.status = status
        self.reads = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.reads += 1
                current = outer.doc
                if self.path != PROGRESS_PATH or current is None or outer.status != 200:
                    self.send_response(503 if outer.status == 200 else outer.status)
                    self.end_headers()
                    return
                body = current.to_json().encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def publish(self, address_dir: Path, namespace: str, pod: str) -> None:
        """Say that pod ``namespace/pod`` answers here (the operator's address file)."""
        path = address_dir / namespace / pod
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.address)

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str]) -> int:
    """``python -m tests.support.progress_stub ADDRESS_FILE``: a trainer that keeps stepping.

    Serves a document whose step counter moves every 0.1 s and writes its
    ``host:port`` to ``ADDRESS_FILE``; a test freezes it with SIGSTOP.
    """
    import time

    stub = ProgressStub(LiveProgress(attempt=1, phase="training"))
    target = Path(argv[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(stub.address)
    steps = 0
    while True:
        time.sleep(0.1)
        steps += 1
        stub.doc = LiveProgress(attempt=1, phase="training", step=steps, steps_this_attempt=steps)


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
