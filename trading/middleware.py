"""Request logging: method, path, status, duration and a request id echoed as X-Request-ID."""

import logging
import re
import time
import uuid

from config.logging import redact

logger = logging.getLogger("trading.requests")

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = (time.perf_counter() - started) * 1000
        response["X-Request-ID"] = request.request_id
        path = redact(request.get_full_path())
        level = logging.ERROR if response.status_code >= 500 else logging.INFO
        logger.log(
            level,
            "%s %s %s %.1fms request_id=%s",
            request.method,
            path,
            response.status_code,
            duration_ms,
            request.request_id,
        )
        return response

    def process_exception(self, request, exception):
        logger.error(
            "unhandled error on %s %s request_id=%s",
            request.method,
            redact(request.get_full_path()),
            getattr(request, "request_id", "-"),
            exc_info=exception,
        )
        return None
