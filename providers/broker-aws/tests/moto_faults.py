"""moto's server app behind a fault-injecting front, for broker-aws's tests.

moto has no error injection for EC2, so this wraps moto's own WSGI app (the one `moto_server`
serves) with a small middleware:

* ``POST /broker-faults`` with ``{"rules": [RULE, ...]}`` adds rules; ``DELETE /broker-faults``
  removes them all. A RULE is a JSON object:

  - ``action``: the API action to match (``RunInstances``, ``GetCallerIdentity``, or a JSON
    protocol target such as ``AmazonSSM.GetParameter``);
  - ``params`` (optional): request parameters that must all be equal, e.g.
    ``{"Placement.AvailabilityZone": "us-east-1a"}``;
  - ``any_value`` (optional): a string that some parameter must equal (tests pass their unique
    cluster name so that parallel tests never see each other's faults);
  - ``region`` (optional): the region of the request's SigV4 credential scope;
  - ``times`` (optional): how many requests to answer, then the rule retires (default: all);
  - ``mode``: ``error`` (default) answers the error instead of moto; ``after`` lets moto handle
    the request and then answers the error, like a response lost on the way back; ``body``
    answers ``body`` with ``content_type`` (a canned success);
  - ``status``, ``code``, ``message``: the error, rendered in the protocol of the request (EC2
    XML, STS query XML, or JSON 1.1).

* ``GET /broker-faults/log`` returns every API request seen, oldest first:
  ``{"action", "region", "params", "answer": "moto" | "fault"}``.

Run as ``python moto_faults.py``: it binds 127.0.0.1 on a free port, prints ``PORT <n>`` on
stdout, and serves until its standard input reaches end of file or its parent process changes,
so a test process that dies, however it dies, takes the server with it.
"""

import io
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

CONTROL = "/broker-faults"


def _region(environ):
    # "AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/ec2/aws4_request, ..."
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return None
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else None


def _error_response(rule, target):
    status = int(rule.get("status", 400))
    code = rule.get("code", "InternalError")
    message = rule.get("message", f"injected {code}")
    request_id = str(uuid.uuid4())
    if target:
        body = json.dumps({"__type": code, "message": message})
        return status, "application/x-amz-json-1.1", body
    if rule.get("action") in ("GetCallerIdentity", "AssumeRole"):
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, "text/xml", body
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
        f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
    )
    return status, "text/xml", body


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            500: "Internal Server Error", 503: "Service Unavailable"}


class FaultMiddleware:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.rules = []
        self.log = []

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL):
            return self.control(environ, start_response)

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))

        target = environ.get("HTTP_X_AMZ_TARGET")
        params = {}
        if target:
            action = target
            try:
                params = {k: v for k, v in json.loads(body or b"{}").items() if isinstance(v, str)}
            except ValueError:
                params = {}
        else:
            raw = body.decode("utf-8", "replace") + "&" + environ.get("QUERY_STRING", "")
            params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
            action = params.get("Action")
        if not action:
            return self.app(environ, start_response)

        region = _region(environ)
        with self.lock:
            rule = self._take(action, params, region)
            entry = {"action": action, "region": region, "params": params,
                     "answer": "fault" if rule else "moto"}
            self.log.append(entry)
        if rule is None:
            return self.app(environ, start_response)

        mode = rule.get("mode", "error")
        if mode == "after":
            # Let moto do the work, then lose its answer.
            result = self.app(environ, lambda *args, **kwargs: None)
            try:
                for _ in result:
                    pass
            finally:
                if hasattr(result, "close"):
                    result.close()
        if mode == "body":
            status = int(rule.get("status", 200))
            content_type = rule.get("content_type", "text/xml")
            text = rule.get("body", "")
        else:
            status, content_type, text = _error_response(rule, target)
        data = text.encode("utf-8")
        start_response(
            f"{status} {_REASONS.get(status, 'Error')}",
            [("Content-Type", content_type), ("Content-Length", str(len(data)))],
        )
        return [data]

    def _take(self, action, params, region):
        for rule in self.rules:
            if rule.get("action") != action:
                continue
            if rule.get("region") and rule["region"] != region:
                continue
            if any(params.get(k) != v for k, v in rule.get("params", {}).items()):
                continue
            wanted = rule.get("any_value")
            if wanted is not None and wanted not in params.values():
                continue
            times = rule.get("times")
            if times is not None:
                if times <= 0:
                    continue
                rule["times"] = times - 1
            return rule
        return None

    def control(self, environ, start_response):
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if method == "POST" and path == CONTROL:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
            with self.lock:
                self.rules.extend(payload.get("rules", []))
                answer = {"rules": len(self.rules)}
        elif method == "DELETE" and path == CONTROL:
            with self.lock:
                self.rules.clear()
                answer = {"rules": 0}
        elif method == "GET" and path == CONTROL + "/log":
            with self.lock:
                answer = list(self.log)
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown broker-faults request\n"]
        data = json.dumps(answer).encode("utf-8")
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(data)))])
        return [data]


def _die_with_parent():
    parent = os.getppid()

    def stdin_closed():
        # The test process holds the write end; it closes when that process exits or dies.
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    def reparented():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=stdin_closed, daemon=True).start()
    threading.Thread(target=reparented, daemon=True).start()


def main():
    _die_with_parent()
    app = FaultMiddleware(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    os.environ["MOTO_PORT"] = str(port)
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
