"""The HTTP side both contract servers share: a threaded HTTP/1.1 server on loopback that hands
each request to the server's `handle` and writes its JSON answer. A bug in a contract server is
answered 500 and recorded through `on_error`, so it shows in the test instead of hanging it."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from werkzeug.datastructures import Headers


def serve(port, handle, on_error):
    """Serves until killed. `handle(method, path, headers, body)` -> `(status, body, extra headers)`,
    `path` with its query, `headers` case-insensitive; `on_error(exception)` -> `(status, body)`.
    Prints `listening on PORT` once ready."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                status, out, extra = handle(self.command, self.path, Headers(list(self.headers.items())), body)
            except Exception as e:
                status, out = on_error(e)
                extra = {}
            data = json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = serve

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
