"""Client-side instruments on a boto3 S3 client: request counts."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestCounter:
    """Counts API calls per operation (`before-call`, once per call) and HTTP requests actually
    sent (`before-send`, once per attempt, so retries show up)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.http_requests = 0

    def attach(self, client: Any) -> RequestCounter:
        client.meta.events.register("before-call.s3", self._on_call)
        client.meta.events.register("before-send.s3", self._on_send)
        return self

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.http_requests += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())
