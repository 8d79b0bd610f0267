#!/usr/bin/env python3
"""A HubSpot contract server for the CRM write-back tests.

Every request is validated against HubSpot's own OpenAPI documents (`hubspot/`, through
openapi-core): path, method, parameters, security and body schema. A request HubSpot does
not document is answered 400 and recorded as a violation. Every answer is validated against the
same documents before it is sent. Beyond the schemas it enforces what HubSpot's documentation
says and the OpenAPI files cannot: at most 100 inputs per batch, the private-app token, the burst
limit (a rolling window, answered 429 with `Retry-After`), properties that must exist before they
are written, and number/datetime property values that must parse.

State: contacts and companies (seeded through the control API), property groups and properties
(created through the properties API, as `leadscore sync setup` does, or seeded). Control API (not HubSpot's):

    POST /__control/contacts     [{"email": "...", "id": "..."?}]  -> [{"id", "email"}]
    POST /__control/companies    [{"id": "...", "domain": "..."?}]
    POST /__control/deals        {"<deal id>": ["<contact id>", ...]}  (associations, for search)
    POST /__control/properties   {"objectType": "contacts", "names": [...]}
    POST /__control/fail         {"status": 500|401|429|..., "count": N (default: until cleared),
                                  "retry_after": seconds (429)}
    GET  /__control/summary      counts only: contacts, written, writes, requests, violations, …
    GET  /__control/state        {"contacts": {id: {email, properties}}, "groups", "properties",
                                  "requests": [{method, path, status, inputs, at}],
                                  "violations": [...], "max_inputs", "max_in_window"}

Run: `python hubspot_contract.py --token T [--rate 190 --window 10] [--spec-dir DIR]`; it prints
`listening on PORT` once ready.
"""

import argparse
import json
import re
import sys
import threading
import time
import uuid
import warnings
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from contract_http import serve
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

# openapi-core checks the `private_apps` API-key scheme and skips OAuth 2 (it warns so); the
# bearer token is checked below instead.
warnings.filterwarnings("ignore", message="Unsupported scheme type")

HOST = "https://api.hubapi.com"
MAX_INPUTS = 100


class Request:
    """openapi-core's request protocol over one HTTP request."""

    def __init__(self, method, path, query, headers, body):
        self.host_url = HOST
        self.path = path
        self.method = method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=headers, cookie=ImmutableMultiDict(), path={}
        )
        self.content_type = headers.get("Content-Type", "application/json").split(";")[0].strip()
        self.body = body or None

    @property
    def full_url_pattern(self):
        return HOST + self.path


class Response:
    def __init__(self, status, body):
        self.status_code = status
        self.data = json.dumps(body).encode()
        self.content_type = "application/json"
        self.headers = Headers({"Content-Type": "application/json"})


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(status, category, message, **extra):
    body = {"status": "error", "category": category, "message": message, "correlationId": str(uuid.uuid4())}
    body.update(extra)
    return status, body


class State:
    def __init__(self, token, rate, window):
        self.lock = threading.Lock()
        self.token = token
        self.rate = rate
        self.window = window
        self.contacts = {}  # id -> {"email", "properties"}
        self.companies = {}  # id -> {"domain", "properties"}
        self.deal_contacts = {}  # deal id -> [contact id]
        self.emails = {}  # lower-case e-mail -> id
        self.next_id = 1000
        self.groups = {"contacts": {}, "companies": {}}
        self.properties = {"contacts": {}, "companies": {}}
        self.requests = []
        self.violations = []
        self.recent = deque()  # send times of the HubSpot API requests in the window
        self.max_inputs = 0
        self.max_in_window = 0
        self.fail = None  # {"status", "count", "retry_after"}

    def by_email(self, email):
        return self.emails.get(email.lower())


def check_value(prop, value):
    """HubSpot rejects a number or datetime property whose text does not parse."""
    if value == "":
        return True  # clears the property
    kind = prop["type"]
    if kind == "number":
        try:
            float(value)
            return True
        except ValueError:
            return False
    if kind in ("datetime", "date"):
        if re.fullmatch(r"\d+", value):
            return True
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            return True
        except ValueError:
            return False
    return True


class Api:
    def __init__(self, state, spec_dir):
        self.state = state
        self.specs = [
            OpenAPI.from_file_path(str(Path(spec_dir) / f"hubspot_crm_{name}.oas.json"))
            for name in ("contacts", "companies", "properties")
        ]

    def spec_for(self, path):
        if path.startswith("/crm/v3/objects/contacts"):
            return self.specs[0]
        if path.startswith("/crm/v3/objects/companies"):
            return self.specs[1]
        if path.startswith("/crm/v3/properties"):
            return self.specs[2]
        return None

    def handle(self, method, raw_path, headers, body):
        """Returns (status, body dict, extra headers)."""
        url = urlsplit(raw_path)
        path, query = url.path, parse_qsl(url.query, keep_blank_values=True)
        st = self.state
        if path.startswith("/__control/"):
            return self.control(method, path, body)
        spec = self.spec_for(path)
        request = Request(method, path, query, headers, body)
        with st.lock:
            entry = {"method": method, "path": path, "at": time.time(), "inputs": None}
            st.requests.append(entry)
        if spec is None:
            return self.finish(entry, None, request, *error(404, "OBJECT_NOT_FOUND", f"no such API: {path}"), violation=True)
        try:
            spec.validate_request(request)
        except Exception as e:  # openapi-core raises a family of validation errors
            detail = "; ".join(str(x) for x in [e, getattr(e, "__cause__", None)] if x)
            return self.finish(entry, spec, request, *error(400, "VALIDATION_ERROR", f"not as documented: {detail}"), violation=True)
        auth = headers.get("Authorization", "")
        if auth != f"Bearer {st.token}":
            return self.finish(
                entry, spec, request,
                *error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found. This API supports OAuth 2.0 authentication"),
            )
        with st.lock:
            t = time.monotonic()
            while st.recent and st.recent[0] <= t - st.window:
                st.recent.popleft()
            st.recent.append(t)
            st.max_in_window = max(st.max_in_window, len(st.recent))
            over = len(st.recent) > st.rate
            fail = st.fail
            if fail is not None and fail.get("count") is not None:
                fail["count"] -= 1
                if fail["count"] <= 0:
                    st.fail = None
        if over:
            st.violations.append(f"{method} {path}: more than {st.rate} requests in {st.window} s")
            return self.finish(
                entry, spec, request,
                *error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.", policyName="TEN_SECONDLY_ROLLING"),
                headers_out={"Retry-After": "1"},
            )
        if fail is not None:
            status = fail["status"]
            extra = {}
            if status == 429:
                extra = {"Retry-After": str(fail.get("retry_after", 1))}
                return self.finish(entry, spec, request, *error(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling limit.", policyName="TEN_SECONDLY_ROLLING"), headers_out=extra)
            if status == 401:
                return self.finish(entry, spec, request, *error(401, "INVALID_AUTHENTICATION", "The OAuth token used to make this call expired"))
            return self.finish(entry, spec, request, *error(status, "INTERNAL_ERROR", "internal error"))
        data = json.loads(body) if body else None
        status, out = self.route(method, path, data, entry)
        return self.finish(entry, spec, request, status, out)

    def finish(self, entry, spec, request, status, body, headers_out=None, violation=False):
        entry["status"] = status
        if violation:
            self.state.violations.append(f"{entry['method']} {entry['path']}: {body.get('message')}")
        if spec is not None and status < 400 and not violation:
            try:
                spec.validate_response(request, Response(status, body))
            except Exception as e:
                self.state.violations.append(f"contract server answered off the documents: {e}")
        elif status >= 400:
            # HubSpot documents its errors as `*/*` with the `Error` schema, which openapi-core
            # cannot read as JSON: its required fields are checked here.
            missing = [f for f in ("category", "correlationId", "message") if f not in body]
            if missing:
                self.state.violations.append(f"contract server error answer without {missing}")
        return status, body, headers_out or {}

    def route(self, method, path, data, entry):
        st = self.state
        m = re.fullmatch(r"/crm/v3/objects/(contacts|companies)/batch/update", path)
        if m and method == "POST":
            return self.batch_update(m.group(1), data["inputs"], entry)
        if path == "/crm/v3/objects/contacts/search" and method == "POST":
            return self.search(data)
        m = re.fullmatch(r"/crm/v3/properties/(\w+)/groups/([^/]+)", path)
        if m and method == "GET":
            with st.lock:
                group = st.groups.setdefault(m.group(1), {}).get(m.group(2))
            if group is None:
                return error(404, "OBJECT_NOT_FOUND", f"group {m.group(2)} does not exist")
            return 200, group
        m = re.fullmatch(r"/crm/v3/properties/(\w+)/groups", path)
        if m and method == "POST":
            group = {"name": data["name"], "label": data["label"], "displayOrder": data.get("displayOrder", -1), "archived": False}
            with st.lock:
                groups = st.groups.setdefault(m.group(1), {})
                if group["name"] in groups:
                    return error(409, "CONFLICT", f"group {group['name']} already exists")
                groups[group["name"]] = group
            return 201, group
        m = re.fullmatch(r"/crm/v3/properties/(\w+)/([^/]+)", path)
        if m and method == "GET":
            with st.lock:
                prop = st.properties.setdefault(m.group(1), {}).get(m.group(2))
            if prop is None:
                return error(404, "OBJECT_NOT_FOUND", f"property {m.group(2)} does not exist")
            return 200, prop
        m = re.fullmatch(r"/crm/v3/properties/(\w+)", path)
        if m and method == "POST":
            with st.lock:
                if data["groupName"] not in st.groups.setdefault(m.group(1), {}):
                    return error(400, "VALIDATION_ERROR", f"group {data['groupName']} does not exist")
                props = st.properties.setdefault(m.group(1), {})
                if data["name"] in props:
                    return error(409, "CONFLICT", f"property {data['name']} already exists")
                prop = {
                    "name": data["name"], "label": data["label"], "type": data["type"], "fieldType": data["fieldType"],
                    "groupName": data["groupName"], "description": data.get("description", ""), "options": [],
                    "createdAt": now_iso(), "updatedAt": now_iso(), "displayOrder": data.get("displayOrder", -1),
                    "calculated": False, "externalOptions": False, "hasUniqueValue": False, "hidden": False,
                    "formField": data.get("formField", False),
                    "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
                }
                props[data["name"]] = prop
            return 201, prop
        return error(404, "OBJECT_NOT_FOUND", f"not served by the contract server: {method} {path}")

    def batch_update(self, object_type, inputs, entry):
        st = self.state
        entry["inputs"] = len(inputs)
        started = now_iso()
        with st.lock:
            st.max_inputs = max(st.max_inputs, len(inputs))
            if len(inputs) > MAX_INPUTS:
                st.violations.append(f"batch/update with {len(inputs)} inputs (HubSpot takes at most {MAX_INPUTS})")
                return error(400, "VALIDATION_ERROR", f"Batch input size {len(inputs)} exceeds the limit of {MAX_INPUTS}")
            records = st.contacts if object_type == "contacts" else st.companies
            props = st.properties[object_type]
            # HubSpot validates every property of every input before writing any.
            for item in inputs:
                for name, value in item["properties"].items():
                    if name not in props:
                        return error(
                            400, "VALIDATION_ERROR", f'Property values were not valid: Property "{name}" does not exist',
                            context={"propertyName": [name]},
                        )
                    if not check_value(props[name], value):
                        return error(
                            400, "VALIDATION_ERROR", f'Property values were not valid: {value} is not a valid {props[name]["type"]} for "{name}"',
                            context={"propertyName": [name]},
                        )
            results, missing, seen = [], [], set()
            for item in inputs:
                key = (item.get("idProperty") or "hs_object_id", item["id"])
                if key in seen:
                    return error(400, "VALIDATION_ERROR", f"Duplicate IDs found in batch input: [{item['id']}]")
                seen.add(key)
                if item.get("idProperty") == "email" and object_type == "contacts":
                    cid = st.by_email(item["id"])
                elif item.get("idProperty") in (None, "hs_object_id"):
                    cid = item["id"] if item["id"] in records else None
                else:
                    return error(400, "VALIDATION_ERROR", f"{item['idProperty']} is not a unique property")
                if cid is None:
                    missing.append(item["id"])
                    continue
                contact = records[cid]
                contact["properties"].update(item["properties"])
                contact["writes"] = contact.get("writes", 0) + 1
                results.append({
                    "id": cid, "properties": dict(contact["properties"]), "createdAt": contact["createdAt"],
                    "updatedAt": now_iso(), "archived": False,
                })
        body = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": now_iso()}
        if missing:
            body["numErrors"] = 1
            kind = "CONTACT" if object_type == "contacts" else "COMPANY"
            body["errors"] = [{
                "status": "error", "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {kind} objects, they may be deleted or not exist. Check that ids are valid.",
                "context": {"ids": missing}, "errors": [], "links": {},
            }]
            return 207, body
        return 200, body

    def search(self, data):
        """Contacts by `associations.deal` (EQ) or a property (EQ), ANDed within a group, ORed across."""
        st = self.state
        with st.lock:
            found = []
            for group in data["filterGroups"]:
                ids = set(st.contacts)
                for f in group["filters"]:
                    if f["operator"] != "EQ":
                        return error(400, "VALIDATION_ERROR", "the contract server searches with EQ only")
                    if f["propertyName"] == "associations.deal":
                        ids &= set(st.deal_contacts.get(f.get("value"), []))
                    else:
                        ids &= {i for i, c in st.contacts.items() if c["properties"].get(f["propertyName"]) == f.get("value")}
                found.extend(i for i in sorted(ids) if i not in found)
            start = int(data.get("after") or 0)
            page = found[start:start + data["limit"]]
            results = [{"id": i, "properties": {p: st.contacts[i]["email"] if p == "email" else st.contacts[i]["properties"].get(p)
                                                for p in data["properties"]},
                        "createdAt": st.contacts[i]["createdAt"], "updatedAt": now_iso(), "archived": False} for i in page]
        body = {"total": len(found), "results": results}
        if start + data["limit"] < len(found):
            body["paging"] = {"next": {"after": str(start + data["limit"])}}
        return 200, body

    def control(self, method, path, body):
        st = self.state
        data = json.loads(body) if body else None
        with st.lock:
            if path == "/__control/contacts" and method == "POST":
                out = []
                for c in data:
                    cid = c.get("id") or str(st.next_id)
                    st.next_id += 1
                    st.contacts[cid] = {"email": c.get("email"), "properties": {}, "createdAt": now_iso()}
                    if c.get("email"):
                        st.emails[c["email"].lower()] = cid
                    out.append({"id": cid, "email": c.get("email")})
                return 200, out, {}
            if path == "/__control/deals" and method == "POST":
                st.deal_contacts.update(data)
                return 200, {}, {}
            if path == "/__control/companies" and method == "POST":
                for c in data:
                    st.companies[c["id"]] = {"domain": c.get("domain"), "properties": {}, "createdAt": now_iso()}
                return 200, [], {}
            if path == "/__control/properties" and method == "POST":
                group = st.groups.setdefault(data["objectType"], {})
                group.setdefault("leadscore", {"name": "leadscore", "label": "Leadscore", "displayOrder": -1, "archived": False})
                for name in data["names"]:
                    kind = data.get("types", {}).get(name, "string")
                    st.properties.setdefault(data["objectType"], {})[name] = {"name": name, "type": kind, "groupName": "leadscore"}
                return 200, {}, {}
            if path == "/__control/fail" and method == "POST":
                st.fail = data if data and data.get("status") else None
                return 200, {}, {}
            if path == "/__control/summary" and method == "GET":
                written = [c for c in st.contacts.values() if "writes" in c]
                return 200, {
                    "contacts": len(st.contacts), "written": len(written),
                    "writes": sum(c["writes"] for c in written),
                    "requests": len(st.requests), "violations": st.violations, "max_inputs": st.max_inputs,
                    "max_in_window": st.max_in_window,
                    "statuses": {str(k): sum(1 for r in st.requests if r.get("status") == k)
                                 for k in sorted({r.get("status") for r in st.requests if r.get("status")})},
                }, {}
            if path == "/__control/state" and method == "GET":
                return 200, {
                    "contacts": st.contacts, "companies": st.companies, "groups": st.groups, "properties": st.properties,
                    "requests": st.requests, "violations": st.violations, "max_inputs": st.max_inputs,
                    "max_in_window": st.max_in_window,
                }, {}
        return 404, {"message": "unknown control call"}, {}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--spec-dir", default=str(Path(__file__).resolve().parent / "hubspot"))
    p.add_argument("--token", required=True)
    p.add_argument("--rate", type=int, default=190)
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    api = Api(State(args.token, args.rate, args.window), args.spec_dir)

    def on_error(e):
        api.state.violations.append(f"contract server error: {e!r}")
        return 500, {"status": "error", "message": repr(e)}

    serve(args.port, api.handle, on_error)


if __name__ == "__main__":
    sys.exit(main())
