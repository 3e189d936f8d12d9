"""A small local HTTP server that speaks Ollama's /api/chat and /api/tags protocol.

Its `mode` decides the answer: a real judgement of the two histories ("good"), an answer
slower than the client's timeout ("slow"), text that is not JSON ("malformed"), a value out
of range ("out_of_range") or an HTTP 500 ("error"). Streaming requests get NDJSON chunks.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOllama:
    def __init__(self) -> None:
        self.mode = "good"
        self.requests: list[dict] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeOllama:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, request: dict) -> str:
        if self.mode == "malformed":
            return "Sure! They look like the same person."
        question = json.loads(request["messages"][-1]["content"])
        a, b = question["record_a"], question["record_b"]
        shared = (set(a["conditions"]) | set(a["medications"])) & (
            set(b["conditions"]) | set(b["medications"])
        )
        similarity = 1.7 if self.mode == "out_of_range" else (0.9 if shared else 0.05)
        verdict = "same" if shared else "different"
        return json.dumps(
            {
                "verdict": verdict,
                "medical_similarity": similarity,
                "reasoning": f"shared: {', '.join(sorted(shared)) or 'nothing'}",
            }
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/api/tags":
                    models = [
                        {
                            "name": "medgemma:latest",
                            "model": "medgemma:latest",
                            "modified_at": "2026-11-01T00:00:00Z",
                            "size": 1,
                            "digest": "0",
                            "details": {"family": "gemma3", "parameter_size": "4B"},
                        }
                    ]
                    self._send(200, json.dumps({"models": models}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(request)
                if self.path != "/api/chat":
                    self._send(404, b'{"error": "not found"}')
                    return
                if fake.mode == "error":
                    self._send(500, b'{"error": "model runner has unexpectedly stopped"}')
                    return
                if fake.mode == "slow":
                    time.sleep(1.5)
                content = fake.answer(request)
                base = {"model": request.get("model", ""), "created_at": "2026-12-01T00:00:00Z"}
                if request.get("stream", True):
                    chunks = [content[: len(content) // 2], content[len(content) // 2 :]]
                    lines = [
                        base | {"message": {"role": "assistant", "content": c}, "done": False}
                        for c in chunks
                    ]
                    lines.append(
                        base
                        | {
                            "message": {"role": "assistant", "content": ""},
                            "done": True,
                            "done_reason": "stop",
                        }
                    )
                    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
                    self._send(200, body, "application/x-ndjson")
                    return
                reply = base | {
                    "message": {"role": "assistant", "content": content},
                    "done": True,
                    "done_reason": "stop",
                }
                self._send(200, json.dumps(reply).encode())

        return Handler
