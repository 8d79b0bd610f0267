#!/usr/bin/env python3
"""A Salesforce contract server for the CRM write-back tests.

Salesforce publishes no OpenAPI document for its REST API, so the contract is written here from
the REST API Developer Guide, "sObject Collections: Update Records"
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_update.htm)
and "Status Codes and Error Responses":

- `PATCH /services/data/vXX.X/composite/sobjects` with `Authorization: Bearer <token>` and a JSON
  body `{"allOrNone": bool?, "records": [{"attributes": {"type": "Lead"}, "id": "...", field: value,
  ...}]}` of at most 200 records, each with its type and id (`REQUEST`, below, as JSON Schema);
- `200` with one SaveResult per record, in order: `{"id", "success", "errors": [{"statusCode",
  "message", "fields"}]}` (`RESULT`), a record failing on its own when `allOrNone` is false;
- errors of the whole request as `[{"message", "errorCode"}]` (`ERRORS`): 401 `INVALID_SESSION_ID`,
  400 `JSON_PARSER_ERROR` / `INVALID_FIELD`, 403 `REQUEST_LIMIT_EXCEEDED`.

Every request is checked against `REQUEST` (a violation is answered 400 and recorded), every
answer against `RESULT` / `ERRORS`. Fields must exist on the object (seeded through the control
API, as an admin creates them in Setup) and numbers must be JSON numbers.

Control API (not Salesforce's):

    POST /__control/records   [{"id": "00Q...", "type": "Lead"}]
    POST /__control/fields    {"Lead": {"Leadscore_Total__c": "number", ...}, "Contact": {...}}
    POST /__control/fail      {"status": 500|401|403, "count": N?}
    GET  /__control/state     {"records": {id: {type, fields, writes}}, "requests", "violations",
                               "max_records"}
"""

import argparse
import json
import re
import sys
import threading
import time

from contract_http import serve
from jsonschema import Draft202012Validator

MAX_RECORDS = 200

REQUEST = {
    "type": "object",
    "required": ["records"],
    "additionalProperties": False,
    "properties": {
        "allOrNone": {"type": "boolean"},
        "records": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_RECORDS,
            "items": {
                "type": "object",
                "required": ["attributes", "id"],
                "properties": {
                    "attributes": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"type": "string", "minLength": 1}},
                    },
                    "id": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}

RESULT = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["success", "errors"],
        "properties": {
            "id": {"type": "string"},
            "success": {"type": "boolean"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["statusCode", "message", "fields"],
                    "properties": {
                        "statusCode": {"type": "string"},
                        "message": {"type": "string"},
                        "fields": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
}

ERRORS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["message", "errorCode"],
        "properties": {"message": {"type": "string"}, "errorCode": {"type": "string"}},
    },
}

PREFIX = {"Lead": "00Q", "Contact": "003"}


class State:
    def __init__(self, token):
        self.lock = threading.Lock()
        self.token = token
        self.records = {}
        self.fields = {"Lead": {}, "Contact": {}}
        self.requests = []
        self.violations = []
        self.max_records = 0
        self.fail = None


def whole_error(status, code, message):
    return status, [{"message": message, "errorCode": code}]


class Api:
    def __init__(self, state):
        self.state = state
        self.request_schema = Draft202012Validator(REQUEST)
        self.result_schema = Draft202012Validator(RESULT)
        self.errors_schema = Draft202012Validator(ERRORS)

    def handle(self, method, path, headers, body):
        st = self.state
        if path.startswith("/__control/"):
            return self.control(method, path, body)
        entry = {"method": method, "path": path, "at": time.time(), "records": None}
        with st.lock:
            st.requests.append(entry)
        status, out = self.route(method, path, headers, body, entry)
        entry["status"] = status
        schema = self.result_schema if status == 200 else self.errors_schema
        problems = [e.message for e in schema.iter_errors(out)]
        if problems:
            st.violations.append(f"contract server answered off the documented shape: {problems}")
        return status, out

    def route(self, method, path, headers, body, entry):
        st = self.state
        if not re.fullmatch(r"/services/data/v\d+\.\d+/composite/sobjects", path):
            st.violations.append(f"{method} {path}: not the sObject Collections resource")
            return whole_error(404, "NOT_FOUND", "The requested resource does not exist")
        if method != "PATCH":
            st.violations.append(f"{method} {path}: updates are PATCH")
            return whole_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,POST,PATCH,DELETE")
        if headers.get("authorization") != f"Bearer {st.token}":
            return whole_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with st.lock:
            fail = st.fail
            if fail is not None and fail.get("count") is not None:
                fail["count"] -= 1
                if fail["count"] <= 0:
                    st.fail = None
        if fail is not None:
            if fail["status"] == 401:
                return whole_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            if fail["status"] == 403:
                return whole_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return whole_error(fail["status"], "UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: 12345")
        if not headers.get("content-type", "").startswith("application/json"):
            st.violations.append("the body is not declared application/json")
        try:
            data = json.loads(body)
        except ValueError as e:
            st.violations.append(f"not JSON: {e}")
            return whole_error(400, "JSON_PARSER_ERROR", f"The request body is not JSON: {e}")
        problems = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in self.request_schema.iter_errors(data)]
        if problems:
            st.violations.append(f"request off the documented shape: {problems}")
            return whole_error(400, "JSON_PARSER_ERROR", "; ".join(problems))
        records = data["records"]
        entry["records"] = len(records)
        with st.lock:
            st.max_records = max(st.max_records, len(records))
            # Fields are checked for the whole request before anything is written.
            for r in records:
                kind = r["attributes"]["type"]
                known = st.fields.get(kind)
                if known is None:
                    return whole_error(400, "INVALID_TYPE", f"sObject type '{kind}' is not supported.")
                for name, value in r.items():
                    if name in ("attributes", "id"):
                        continue
                    if name not in known:
                        return whole_error(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {kind}")
                    if value is not None and known[name] == "number" and not isinstance(value, (int, float)):
                        st.violations.append(f"{name}: a number field sent {value!r}")
                        return whole_error(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of double from VALUE_STRING value {value}")
                    if value is not None and known[name] != "number" and not isinstance(value, str):
                        return whole_error(400, "JSON_PARSER_ERROR", f"Cannot deserialize instance of string from {value!r}")
            results = []
            for r in records:
                rid, kind = r["id"], r["attributes"]["type"]
                if not re.fullmatch(r"[a-zA-Z0-9]{15}|[a-zA-Z0-9]{18}", rid):
                    results.append({"success": False, "errors": [{"statusCode": "MALFORMED_ID", "message": f"malformed id {rid}", "fields": []}]})
                    continue
                record = st.records.get(rid)
                if record is None or record["type"] != kind:
                    results.append({"success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]})
                    continue
                for name, value in r.items():
                    if name not in ("attributes", "id"):
                        record["fields"][name] = value
                record["writes"] = record.get("writes", 0) + 1
                results.append({"id": rid, "success": True, "errors": []})
        return 200, results

    def control(self, method, path, body):
        st = self.state
        data = json.loads(body) if body else None
        with st.lock:
            if path == "/__control/records" and method == "POST":
                for r in data:
                    st.records[r["id"]] = {"type": r["type"], "fields": {}}
                return 200, {}
            if path == "/__control/fields" and method == "POST":
                for kind, fields in data.items():
                    st.fields.setdefault(kind, {}).update(fields)
                return 200, {}
            if path == "/__control/fail" and method == "POST":
                st.fail = data if data and data.get("status") else None
                return 200, {}
            if path == "/__control/state" and method == "GET":
                return 200, {"records": st.records, "requests": st.requests, "violations": st.violations,
                             "max_records": st.max_records}
        return 404, {"message": "unknown control call"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--token", required=True)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    api = Api(State(args.token))

    def handle(method, path, headers, body):
        status, out = api.handle(method, path.split("?", 1)[0], headers, body)
        return status, out, {}

    def on_error(e):
        api.state.violations.append(f"contract server error: {e!r}")
        return 500, [{"message": repr(e), "errorCode": "UNKNOWN_EXCEPTION"}]

    serve(args.port, handle, on_error)


if __name__ == "__main__":
    sys.exit(main())
