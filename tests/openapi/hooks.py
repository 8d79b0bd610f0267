"""Schemathesis hooks for Leadscore (loaded with SCHEMATHESIS_HOOKS=hooks, see run_schemathesis.sh).

Auth: ingest (`/v1/...`) sends the write key as the Basic user name with an empty password; the read
and admin API (`/api/...`) sends `Authorization: Bearer <api key>`; `/healthz` and
`/v1/projects/{write_key}/settings` get nothing. LEADSCORE_ST_AUTH chooses what is sent instead, so
a run can check that refusals are documented too:

    valid    (default) the right key for the path
    none     no Authorization header at all
    wrong    a key the server does not know, in the right scheme
    swapped  the other kind of key: the api key as Basic user on /v1, the write key as Bearer on /api

Data: random strings almost never name a stored lead, model version, delivery or message type, so
every generated path parameter and body (and, for ingest, the Content-Encoding header) is mixed
(hypothesis `one_of`) with real ones read from the server when this module is loaded
(LEADSCORE_BASE, LEADSCORE_WRITE_KEY, LEADSCORE_API_KEY), plus bodies just over the size limits.
That makes the success paths (200/201/204 and their bodies) reachable, not only 404 and 422. The
leads `DELETE /api/leads/{id}` may pick are kept apart from the ones the read operations pick, so
reads keep finding leads whatever order operations run in.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import schemathesis
from hypothesis import strategies as st

BASE = os.environ.get("LEADSCORE_BASE", "").rstrip("/")
WRITE_KEY = os.environ.get("LEADSCORE_WRITE_KEY", "")
API_KEY = os.environ.get("LEADSCORE_API_KEY", "")
AUTH_MODE = os.environ.get("LEADSCORE_ST_AUTH", "valid")
WRONG_KEY = "st_not_a_key_0000"

if AUTH_MODE not in ("valid", "none", "wrong", "swapped"):
    raise RuntimeError(f"LEADSCORE_ST_AUTH={AUTH_MODE!r}: expected valid, none, wrong or swapped")
if not (BASE and WRITE_KEY and API_KEY):
    raise RuntimeError("hooks.py needs LEADSCORE_BASE, LEADSCORE_WRITE_KEY and LEADSCORE_API_KEY")


def _basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


def _get(path: str):
    req = urllib.request.Request(BASE + path, headers={"Authorization": f"Bearer {API_KEY}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"null")
    except (urllib.error.URLError, ValueError) as err:
        raise RuntimeError(f"hooks.py: GET {path} failed: {err}") from err


# ---------------------------------------------------------------------------------------------
# Real data from the server under test.

_leads = [lead["id"] for lead in _get("/api/leads?limit=1000")["leads"]]
if len(_leads) < 4:
    raise RuntimeError(f"hooks.py: the server has {len(_leads)} leads; seed it first (seed.py)")
_cut = max(1, len(_leads) // 5)
DELETABLE_LEADS = sorted(_leads)[-_cut:]
READ_LEADS = sorted(_leads)[:-_cut]

ACCOUNTS: list[str] = []
for _lead in READ_LEADS:
    _account = _get("/api/leads/" + urllib.parse.quote(_lead, safe="")).get("account")
    _account_id = _account.get("id") if isinstance(_account, dict) else _account
    if isinstance(_account_id, str) and _account_id not in ACCOUNTS:
        ACCOUNTS.append(_account_id)

_models = _get("/api/models")["models"]
MODEL_VERSIONS = sorted(m["version"] for m in _models)
_active = next((m["version"] for m in _models if m.get("active")), MODEL_VERSIONS[-1])
_source = _get(f"/api/models/{_active}")
MODEL_TOML = next((v for k, v in _source.items() if k in ("source", "toml") and isinstance(v, str)), None)
if MODEL_TOML is None:
    raise RuntimeError(f"hooks.py: GET /api/models/{_active} has no `source`/`toml` field: {list(_source)}")
# A second, different valid model, so POST /api/models can create a new version.
MODEL_TOML_RENAMED = MODEL_TOML.replace('name = "', 'name = "st-', 1)

DELIVERY_IDS = [str(d["id"]) for d in _get("/api/webhooks/deliveries").get("deliveries", []) if "id" in d][:20]

MESSAGE_TYPES = ["identify", "track", "page", "screen", "group", "alias", "i", "t", "p", "s", "g", "a", "b"]


def _messages(lead: str) -> list[dict]:
    return [
        {"type": "identify", "userId": lead, "traits": {"title": "CTO", "employees": 300}},
        {"type": "track", "userId": lead, "event": "Demo Requested", "properties": {"plan": "pro"}},
        {"type": "page", "userId": lead, "name": "Pricing", "properties": {"path": "/pricing"}},
        {"type": "screen", "userId": lead, "name": "Home"},
        {"type": "group", "userId": lead, "groupId": "st-account.example", "traits": {"employees": 500}},
        {"type": "alias", "userId": lead, "previousId": "st-anon-1"},
        {"type": "track", "anonymousId": "st-anon-2", "event": "Signed Up", "timestamp": "2024-01-02T03:04:05Z"},
    ]


VALID_MESSAGES = [m for lead in READ_LEADS[:3] for m in _messages(lead)]
# Over the documented limits (32 KB per message, 500 KB per request): the answer must be documented.
BIG_MESSAGE = {"type": "track", "userId": READ_LEADS[0], "event": "Big", "properties": {"blob": "x" * 40_000}}
BIG_TOML = MODEL_TOML + "\n# " + "x" * 520_000 + "\n"


# ---------------------------------------------------------------------------------------------
# `POST /api/models` and `POST /api/backtest` take `application/toml`: send it as text.

schemathesis.serializer.alias("application/toml", "text/plain")


# ---------------------------------------------------------------------------------------------
# Auth.


@schemathesis.auth(refresh_interval=None, retry_on=[])
class LeadscoreAuth:
    def get(self, case, context):
        path = context.operation.path
        if path.startswith("/api/"):
            kind = "bearer"
        elif (path.startswith("/v1/") and not path.startswith("/v1/projects/")) or path == "/sourceConfig":
            kind = "basic"
        else:
            # /beacon/v1/batch takes its write key in the query (before_generate_query).
            return None
        return (kind, AUTH_MODE)

    def set(self, case, data, context):
        kind, mode = data
        headers = case.headers if case.headers is not None else {}
        headers.pop("Authorization", None)
        if mode == "valid":
            key = API_KEY if kind == "bearer" else WRITE_KEY
        elif mode == "wrong":
            key = WRONG_KEY
        elif mode == "swapped":
            key = WRITE_KEY if kind == "bearer" else API_KEY
        else:
            key = None
        if key is not None:
            headers["Authorization"] = f"Bearer {key}" if kind == "bearer" else _basic(key)
        case.headers = headers


# ---------------------------------------------------------------------------------------------
# Real path parameters and bodies, mixed into what schemathesis generates.


# The operations the data above is for; a renamed operationId would silently lose its real data.
KNOWN_OPERATIONS = {
    "get_lead", "post_outcome", "delete_lead", "get_account", "get_model", "activate_model",
    "resend_delivery", "single", "settings", "batch", "post_model", "backtest", "beacon", "source_config",
}


@schemathesis.hook
def after_load_schema(context, schema):
    present = {
        op.get("operationId")
        for item in schema.raw_schema.get("paths", {}).values()
        for op in item.values()
        if isinstance(op, dict)
    }
    missing = sorted(KNOWN_OPERATIONS - present)
    if missing:
        print(f"hooks.py: WARNING: no operation with operationId {', '.join(missing)}; update hooks.py", file=sys.stderr)


def _operation_id(context) -> str:
    return context.operation.definition.raw.get("operationId", "")


def _with(strategy, extra):
    return st.one_of(strategy, extra) if extra is not None else strategy


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    op = _operation_id(context)
    extra = None
    if op in ("get_lead", "post_outcome"):
        extra = st.fixed_dictionaries({"id": st.sampled_from(READ_LEADS)})
    elif op == "delete_lead":
        extra = st.fixed_dictionaries({"id": st.sampled_from(DELETABLE_LEADS)})
    elif op == "get_account" and ACCOUNTS:
        extra = st.fixed_dictionaries({"id": st.sampled_from(ACCOUNTS)})
    elif op in ("get_model", "activate_model"):
        extra = st.fixed_dictionaries({"version": st.sampled_from(MODEL_VERSIONS)})
    elif op == "resend_delivery" and DELIVERY_IDS:
        extra = st.fixed_dictionaries({"id": st.sampled_from(DELIVERY_IDS)})
    elif op == "single":
        extra = st.fixed_dictionaries({"type": st.sampled_from(MESSAGE_TYPES)})
    elif op == "settings":
        extra = st.fixed_dictionaries({"write_key": st.just(WRITE_KEY)})
    return _with(strategy, extra)


@schemathesis.hook
def before_generate_query(context, strategy):
    # RudderStack's beacon (and, besides Basic auth, its source config) carry the write key in the
    # query: the key for this run's auth mode, mixed with whatever schemathesis generates.
    if _operation_id(context) not in ("beacon", "source_config"):
        return strategy
    key = {"valid": WRITE_KEY, "wrong": WRONG_KEY, "swapped": API_KEY}.get(AUTH_MODE)
    if key is None:
        return strategy
    return _with(strategy, st.fixed_dictionaries({"writeKey": st.just(key)}))


@schemathesis.hook
def before_generate_headers(context, strategy):
    # Ingest documents gzip bodies; SDKs and proxies also send other encodings. An unsupported one
    # must get a documented answer, and `gzip` on a body that is not gzip is a documented 400.
    if _operation_id(context) not in ("batch", "single"):
        return strategy
    encodings = st.sampled_from([{"Content-Encoding": "br"}, {"Content-Encoding": "gzip"}])
    return st.one_of(strategy, encodings)


@schemathesis.hook
def before_generate_body(context, strategy):
    op = _operation_id(context)
    extra = None
    if op == "post_outcome":
        extra = st.fixed_dictionaries(
            {"outcome": st.sampled_from(["won", "converted", "lost", "disqualified"])},
            optional={"at": st.sampled_from(["2024-05-01T00:00:00Z", None])},
        )
    elif op == "post_model":
        extra = st.sampled_from([MODEL_TOML, MODEL_TOML_RENAMED, BIG_TOML])
    elif op == "backtest":
        extra = st.sampled_from([MODEL_TOML, "", BIG_TOML])
    elif op in ("batch", "beacon"):
        extra = st.lists(st.sampled_from(VALID_MESSAGES + [BIG_MESSAGE]), min_size=1, max_size=5).map(
            lambda b: {"batch": b}
        )
    elif op == "single":
        extra = st.sampled_from(VALID_MESSAGES + [BIG_MESSAGE])
    return _with(strategy, extra)
