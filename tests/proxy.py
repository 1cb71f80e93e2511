"""A pass-through HTTP hop in front of the real Label Studio that can fail chosen requests.

It stands for a flaky network or an overloaded server: every request reaches the real server
except the ones `fail_when(method, path, count)` picks, which get a 502/500 (or `body`, for an
answer of an unexpected shape) without being forwarded, or, with `drop`, a closed connection (a
server that went away). `rewrite` changes the real server's answers on their way back (a field of
another type, a task twice in an export): Label Studio itself is never mocked. `hold_when` picks answers
to stop halfway: their headers and first half are sent, `holding` is set, and the rest waits for
`release` (a deterministic moment to interrupt a client mid-download).
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class FailingProxy:
    def __init__(
        self,
        upstream: str,
        fail_when,
        status: int = 500,
        body: bytes = b'{"detail": "injected failure"}',
        drop: bool = False,
        rewrite=None,
        hold_when=None,
    ) -> None:
        self.upstream, self.fail_when, self.status, self.body, self.drop = (
            upstream.rstrip("/"),
            fail_when,
            status,
            body,
            drop,
        )
        self.rewrite = rewrite  # (method, path, answer bytes) -> the bytes to answer instead, or None: unchanged
        self.rewritten = 0
        self.hold_when = hold_when or (lambda method, path, count: False)
        self.holding, self.release = threading.Event(), threading.Event()
        self.counts: Counter = Counter()
        self.failed = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                key = (self.command, self.path.split("?")[0])
                proxy.counts[key] += 1
                if proxy.fail_when(self.command, self.path, proxy.counts[key]):
                    proxy.failed += 1
                    if proxy.drop:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    self.send_response(proxy.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(proxy.body)))
                    self.end_headers()
                    self.wfile.write(proxy.body)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")
                }
                response = httpx.request(
                    self.command, proxy.upstream + self.path, headers=headers, content=body, timeout=120
                )
                content = response.content
                changed = proxy.rewrite(self.command, self.path, content) if proxy.rewrite is not None else None
                if changed is not None:
                    proxy.rewritten += 1
                    content = changed
                self.send_response(response.status_code)
                for k, v in response.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if not proxy.hold_when(self.command, self.path, proxy.counts[key]):
                    self.wfile.write(content)
                    return
                half = len(content) // 2
                self.wfile.write(content[:half])
                self.wfile.flush()
                proxy.holding.set()
                proxy.release.wait(120)
                try:
                    self.wfile.write(content[half:])
                except OSError:  # the client is gone: that was the point
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
