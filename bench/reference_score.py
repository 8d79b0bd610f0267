#!/usr/bin/env python3
"""Leadscore reference scorer: an independent Python reading of SPEC.md §2.2.

Written from the specification only (not from the Rust code), as a differential-test oracle
(crates/cli/tests/differential.rs) and as the peer in the end-to-end benchmark (bench/score_e2e.sh).
It is deliberately straightforward: one pass over the events, then each lead on its own, with
CEL conditions evaluated by cel-python (`pip install cel-python==0.5.0`, module `celpy`).

    python3 bench/reference_score.py --model M.toml --leads L.csv --events E.jsonl \
        --outcomes O.csv --as-of 2024-07-01T00:00:00Z --format csv --out F

Readings of the places where SPEC §2.2 is ambiguous (the same documented choices as the engine):
- Event time: `timestamp`, else `originalTimestamp + (receivedAt - sentAt)`, else
  `originalTimestamp`, else `receivedAt`. Instants are compared in milliseconds.
- `[events] ignore` drops events before anything else (identity, traits, scoring).
- Identity: an `identify` with both `userId` and `anonymousId`, or an `alias` (`previousId` ->
  `userId`), links the anonymous id to the user from the link's time; the earliest link wins
  (tie: smaller userId). An anonymous-only event of a linked id belongs to the user and is visible
  when both its time and the link time are <= as_of. Unlinked anonymous events belong to nobody.
- Per lead: visible events with time <= as_of, sorted by (time, messageId, JSON text),
  deduplicated by messageId keeping the first.
- Traits: leads CSV, then each `identify` event's `traits` merged in time order (JSON null removes).
  `lead` = traits + `id` + `account` (the account's traits + `id`, when the lead has an account).
  The account: `groupId` of the lead's latest `group` event, else its `account` trait; account
  traits = merge of the `traits` of every `group` event for that groupId up to as_of.
- Inactivity anchor: the `created_at` trait if it is an RFC 3339 time or a date, else the first
  event.
- Condition errors make the condition false; numbers compare (and do arithmetic) across int
  and double; every number from JSON or the leads CSV is a double (as CEL maps JSON).
- Rows: every id of the leads file in file order, then every other `userId` of a message not
  dropped by `[events] ignore` (regardless of as_of), sorted. Numbers are rounded half away from
  zero to 2 decimals.
"""

from __future__ import annotations

import argparse
import calendar
import csv
import json
import logging
import math
import operator
import re
import sys
import time
import tomllib
import types
from dataclasses import dataclass, field
from typing import Any

try:
    import celpy
    import celpy.evaluation
    from celpy import celtypes
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("reference_score.py needs cel-python: pip install cel-python==0.5.0\n")
    sys.exit(3)

# celpy logs every evaluation error at ERROR level; for us an error is just "false".
logging.getLogger("celpy").setLevel(logging.CRITICAL + 1)
logging.getLogger("celpy").propagate = False

SECOND = 1000
DURATION_UNITS = {"ms": 1, "s": SECOND, "m": 60 * SECOND, "h": 3600 * SECOND,
                  "d": 86400 * SECOND, "w": 7 * 86400 * SECOND}
DAY_MS = 86400 * SECOND


# ------------------------------------------------------------------------------------------
# Time
# ------------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_time(text: Any, allow_date: bool = False) -> int | None:
    """RFC 3339 -> Unix milliseconds (fraction truncated to ms); None when not a timestamp."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text.strip())
    if m:
        y, mo, d, h, mi, s, frac, off = m.groups()
        try:
            secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
        except (ValueError, OverflowError):
            return None
        if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31 and int(h) < 24 and int(mi) < 60
                and int(s) < 61):
            return None
        ms = secs * 1000 + (int((frac or "0")[:3].ljust(3, "0")))
        if off not in ("Z", "z"):
            sign = 1 if off[0] == "+" else -1
            ms -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60) * 1000
        return ms
    if allow_date:
        m = _DATE.match(text.strip())
        if m:
            return calendar.timegm((int(m[1]), int(m[2]), int(m[3]), 0, 0, 0, 0, 0, 0)) * 1000
    return None


def format_time(ms: int) -> str:
    secs, milli = divmod(ms, 1000)
    t = time.gmtime(secs)
    base = "%04d-%02d-%02dT%02d:%02d:%02d" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour,
                                               t.tm_min, t.tm_sec)
    # the shortest fraction: "…:05Z", "…:05.5Z", "…:05.123Z"
    return base + (("." + ("%03d" % milli).rstrip("0")) if milli else "") + "Z"


def parse_duration(text: Any) -> int:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text * SECOND)
    s = str(text).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", s)
    if not parts or "".join(a + b for a, b in parts) != s.replace(" ", ""):
        raise ValueError(f"bad duration {text!r}")
    return int(sum(float(n) * DURATION_UNITS[u] for n, u in parts))


def event_time(msg: dict) -> int | None:
    t = parse_time(msg.get("timestamp"))
    if t is not None:
        return t
    orig = parse_time(msg.get("originalTimestamp"))
    sent = parse_time(msg.get("sentAt"))
    recv = parse_time(msg.get("receivedAt"))
    if orig is not None:
        if sent is not None and recv is not None:
            return orig + (recv - sent)
        return orig
    return recv


# ------------------------------------------------------------------------------------------
# CEL
# ------------------------------------------------------------------------------------------



def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, (bool, celtypes.BoolType))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, (bool, celtypes.BoolType))


def _cel_equal(a: Any, b: Any) -> bool:
    """CEL heterogeneous equality: numbers compare by value, other different types are unequal."""
    if isinstance(a, celtypes.BoolType) or isinstance(b, celtypes.BoolType):
        return (isinstance(a, celtypes.BoolType) and isinstance(b, celtypes.BoolType)
                and bool(a) == bool(b))
    if _is_num(a) and _is_num(b):
        return float(a) == float(b) if _is_int(a) != _is_int(b) else a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return str(a) == str(b)
    if isinstance(a, celtypes.ListType) and isinstance(b, celtypes.ListType):
        return len(a) == len(b) and all(_cel_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, celtypes.MapType) and isinstance(b, celtypes.MapType):
        if len(a) != len(b):
            return False
        for k, v in a.items():
            if k not in b or not _cel_equal(v, b[k]):
                return False
        return True
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _ordering(op):
    def f(a, b):
        if _is_num(a) and _is_num(b):
            return celtypes.BoolType(op(float(a), float(b)) if _is_int(a) != _is_int(b)
                                     else op(a, b))
        if isinstance(a, str) and isinstance(b, str):
            return celtypes.BoolType(op(str(a), str(b)))
        if type(a) is type(b) and isinstance(a, (celtypes.TimestampType, celtypes.DurationType,
                                                 celtypes.BoolType)):
            return celtypes.BoolType(op(a, b))
        raise TypeError(f"no such overload: {type(a).__name__} {type(b).__name__}")
    return f


def ls_lt(a, b):
    return _ordering(operator.lt)(a, b)


def ls_le(a, b):
    return _ordering(operator.le)(a, b)


def ls_gt(a, b):
    return _ordering(operator.gt)(a, b)


def ls_ge(a, b):
    return _ordering(operator.ge)(a, b)


def _arith(op, name):
    """CEL arithmetic, except that an int and a double mix (the int becomes a double)."""
    def f(a, b):
        if _is_num(a) and _is_num(b) and _is_int(a) != _is_int(b):
            return celtypes.DoubleType(op(float(a), float(b)))
        return getattr(operator, name)(a, b)
    return f


def ls_add(a, b):
    return _arith(operator.add, "add")(a, b)


def ls_sub(a, b):
    return _arith(operator.sub, "sub")(a, b)


def ls_mul(a, b):
    return _arith(operator.mul, "mul")(a, b)


def ls_div(a, b):
    return _arith(operator.truediv, "truediv")(a, b)


def ls_eq(a, b):
    return celtypes.BoolType(_cel_equal(a, b))


def ls_ne(a, b):
    return celtypes.BoolType(not _cel_equal(a, b))


def ls_in(item, container):
    if isinstance(container, celtypes.ListType):
        return celtypes.BoolType(any(_cel_equal(item, x) for x in container))
    if isinstance(container, celtypes.MapType):
        return celtypes.BoolType(any(_cel_equal(item, k) for k in container.keys()))
    raise TypeError("no such overload: in")


def _need_str(s):
    if not isinstance(s, celtypes.StringType):
        raise TypeError("no such overload: expected string")
    return str(s)


def lowerAscii(s):  # noqa: N802 - CEL name
    text = _need_str(s)
    return celtypes.StringType("".join(c.lower() if "A" <= c <= "Z" else c for c in text))


def upperAscii(s):  # noqa: N802 - CEL name
    text = _need_str(s)
    return celtypes.StringType("".join(c.upper() if "a" <= c <= "z" else c for c in text))


def email_domain(s):
    text = _need_str(s)
    if "@" not in text:
        raise ValueError("not an e-mail address")
    return celtypes.StringType(text.rsplit("@", 1)[1].strip().lower())


FREE_EMAIL_DOMAINS = frozenset("""
gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.fr yahoo.de ymail.com rocketmail.com
outlook.com hotmail.com hotmail.co.uk hotmail.fr live.com msn.com icloud.com me.com mac.com
aol.com proton.me protonmail.com pm.me gmx.de gmx.net gmx.com web.de mail.com mail.ru yandex.ru
yandex.com zoho.com fastmail.com tutanota.com hey.com qq.com 163.com 126.com
""".split())


def is_free_email(s):
    return celtypes.BoolType(str(email_domain(s)) in FREE_EMAIL_DOMAINS)


_AS_OF_MS = [0]  # days_since() is relative to the as_of of the run


def days_since(t):
    if isinstance(t, celtypes.TimestampType):
        ms = int(t.timestamp() * 1000)
    elif isinstance(t, celtypes.StringType):
        ms = parse_time(str(t), allow_date=True)
        if ms is None:
            raise ValueError("not a timestamp")
    else:
        raise TypeError("no such overload: days_since")
    return celtypes.DoubleType((_AS_OF_MS[0] - ms) / DAY_MS)


CEL_FUNCTIONS = {
    "_<_": ls_lt, "_<=_": ls_le, "_>_": ls_gt, "_>=_": ls_ge,
    "_==_": ls_eq, "_!=_": ls_ne, "_in_": ls_in,
    "_+_": ls_add, "_-_": ls_sub, "_*_": ls_mul, "_/_": ls_div,
    "lowerAscii": lowerAscii, "upperAscii": upperAscii,
    "email_domain": email_domain, "is_free_email": is_free_email, "days_since": days_since,
}

# celpy's CompiledRunner (about 5x faster than the tree-walking interpreter) transpiles calls to
# `<module>.<qualname>` and executes them in celpy.evaluation's globals: publish ours there.
_FN_MODULE = "_leadscore_reference_fns"
for _f in CEL_FUNCTIONS.values():
    _f.__module__ = _FN_MODULE
setattr(celpy.evaluation, _FN_MODULE,
        types.SimpleNamespace(**{f.__qualname__: f for f in CEL_FUNCTIONS.values()}))


# Two defects of celpy 0.5.0's transpiler, patched so that it agrees with the interpreter (and
# with CEL): `has()` yields a Python bool that logical_and/or/not reject, and an AttributeError
# (a field selected on a string or null) escapes the error-as-value wrapping, so that
# `null_field.startsWith("x") || true` would be an error instead of true.
# Transpiled code runs in the globals of `celpy.evaluation.result`, so the replacement is
# defined inside that module's namespace.
_EVAL_GLOBALS = celpy.evaluation.__dict__
_EVAL_GLOBALS["_leadscore_orig_result"] = celpy.evaluation.result
exec(  # noqa: S102 - a fixed string
    "def result(activation, cel_expr):\n"
    "    try:\n"
    "        return _leadscore_orig_result(activation, cel_expr)\n"
    "    except AttributeError as ex:\n"
    "        return CELEvalError('no such overload', AttributeError, ex.args)\n",
    _EVAL_GLOBALS)


def _bools(fn):
    def wrapped(*args):
        return fn(*(celtypes.BoolType(a) if type(a) is bool else a for a in args))
    wrapped.__name__ = fn.__name__
    return wrapped


celtypes.logical_and = _bools(celtypes.logical_and)
celtypes.logical_or = _bools(celtypes.logical_or)
celtypes.logical_not = _bools(celtypes.logical_not)


class Cel:
    def __init__(self, runner: str = "compiled"):
        cls = celpy.CompiledRunner if runner == "compiled" else celpy.InterpretedRunner
        self.env = celpy.Environment(runner_class=cls)

    def compile(self, text: str, what: str):
        try:
            ast = self.env.compile(text)
            return self.env.program(ast, functions=CEL_FUNCTIONS)
        except Exception as e:  # noqa: BLE001
            raise SystemExit(f"model: cannot compile {what}: {text!r}: {e}")


def holds(program, activation: dict) -> bool:
    """A condition holds when it evaluates to true; any evaluation error means false."""
    try:
        r = program.evaluate(activation)
    except Exception:  # noqa: BLE001 - CELEvalError and anything celpy raises inside
        return False
    return isinstance(r, (bool, celtypes.BoolType)) and bool(r) is True \
        and not isinstance(r, Exception)


def to_cel(v: Any):
    """JSON -> CEL as the CEL spec maps JSON (google.protobuf.Value): every number is a double.
    (celpy.json_to_cel would make integral numbers ints, so that `lead.n / 2` truncates.)"""
    if v is None:
        return None
    if isinstance(v, bool):
        return celtypes.BoolType(v)
    if isinstance(v, (int, float)):
        return celtypes.DoubleType(v)
    if isinstance(v, str):
        return celtypes.StringType(v)
    if isinstance(v, list):
        return celtypes.ListType([to_cel(x) for x in v])
    if isinstance(v, dict):
        return celtypes.MapType({celtypes.StringType(k): to_cel(x) for k, x in v.items()})
    raise TypeError(f"not JSON: {v!r}")


# ------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------

@dataclass
class Rule:
    name: str
    dimension: str
    kind: str  # trait | event | count | inactive
    cond: Any
    points: float
    limit: int | None = None
    within: int | None = None
    per_day: int | None = None
    max_points: float | None = None
    half_life: int | None = None  # ms; None: dimension's
    no_decay: bool = False
    at_least: int | None = None
    for_ms: int | None = None


@dataclass
class Dimension:
    name: str
    min: float | None = None
    max: float | None = None
    weight: float = 1.0
    half_life: int | None = None


@dataclass
class Model:
    dims: list[Dimension]
    rules: list[Rule]
    stages: list[tuple[str, Any]]
    grade: dict | None
    ignore: Any
    calibration: tuple[float, float] | None
    trait_types: dict[str, str] = field(default_factory=dict)


def load_model(path: str, cel: Cel) -> Model:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    dims = []
    for name, d in (doc.get("dimensions") or {}).items():
        hl = d.get("half_life")
        dims.append(Dimension(
            name=name, min=d.get("min"), max=d.get("max"), weight=float(d.get("weight", 1.0)),
            half_life=None if hl in (None, "none") else parse_duration(hl)))
    rules = []
    for r in doc.get("rules") or []:
        hl = r.get("half_life")
        common = dict(name=r["name"], dimension=r["dimension"], points=float(r.get("points", 0)))
        if "if" in r:
            rule = Rule(kind="trait", cond=cel.compile(r["if"], r["name"]), **common)
        elif "inactive" in r:
            rule = Rule(kind="inactive", cond=cel.compile(r["inactive"], r["name"]),
                        for_ms=parse_duration(r["for"]), **common)
        elif "at_least" in r:
            rule = Rule(kind="count", cond=cel.compile(r["on"], r["name"]),
                        at_least=int(r["at_least"]), within=parse_duration(r["within"]),
                        per_day=r.get("per_day"), **common)
        else:
            rule = Rule(kind="event", cond=cel.compile(r["on"], r["name"]),
                        limit=r.get("limit"),
                        within=parse_duration(r["within"]) if "within" in r else None,
                        per_day=r.get("per_day"),
                        max_points=float(r["max_points"]) if "max_points" in r else None,
                        half_life=None if hl in (None, "none") else parse_duration(hl),
                        no_decay=(hl == "none"), **common)
        rules.append(rule)
    stages = [(s["name"], cel.compile(s["when"], "stage " + s["name"]))
              for s in doc.get("stages") or []]
    ev = doc.get("events") or {}
    ignore = cel.compile(ev["ignore"], "[events] ignore") if ev.get("ignore") else None
    cal = doc.get("calibration")
    calibration = (float(cal["intercept"]), float(cal["slope"])) if cal else None
    return Model(dims=dims, rules=rules, stages=stages, grade=doc.get("grade"), ignore=ignore,
                 calibration=calibration, trait_types=dict(doc.get("traits") or {}))


# ------------------------------------------------------------------------------------------
# Input files
# ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_number(s: str):
    """A CSV number: a double, like a JSON number (so `lead.employees / 3` is not truncated)."""
    s = s.strip()
    if not _NUMBER.match(s):
        return None
    return float(s)


def parse_bool(s: str):
    low = s.strip().lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    return None


def load_leads(path: str, model: Model, id_column: str) -> tuple[list[str], dict[str, dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if r]
    idx = header.index(id_column)
    columns = [(i, h) for i, h in enumerate(header) if i != idx]
    kinds = {}
    for i, h in columns:
        declared = model.trait_types.get(h)
        if declared:
            kinds[h] = declared
        else:
            values = [r[i] for r in body if i < len(r) and r[i] != ""]
            kinds[h] = "number" if all(parse_number(v) is not None for v in values) else "string"
    order, leads = [], {}
    for r in body:
        lead_id = r[idx]
        traits = {}
        for i, h in columns:
            v = r[i] if i < len(r) else ""
            if v == "":
                continue
            k = kinds[h]
            if k == "number":
                n = parse_number(v)
                if n is not None:
                    traits[h] = n
            elif k == "bool":
                b = parse_bool(v)
                if b is not None:
                    traits[h] = b
            elif k == "timestamp":
                traits[h] = ("__ts__", v)
            else:
                traits[h] = v
        if lead_id in leads:
            raise SystemExit(f"{path}: lead {lead_id!r} appears twice")
        order.append(lead_id)
        leads[lead_id] = traits
    return order, leads


def load_outcomes(path: str | None) -> dict[str, list[tuple[int, int, str]]]:
    out: dict[str, list] = {}
    if not path:
        return out
    with open(path, newline="", encoding="utf-8") as f:
        for n, r in enumerate(csv.DictReader(f)):
            at = parse_time(r["at"], allow_date=True)
            if at is None:
                continue
            out.setdefault(r["lead_id"], []).append((at, n, r["outcome"].strip().lower()))
    return out


@dataclass
class Event:
    time: int
    msg: dict
    text: str
    message_id: str
    _cel: Any = None

    def key(self):
        return (self.time, self.message_id, self.text)

    def cel(self):
        if self._cel is None:
            m = dict(self.msg)
            m["timestamp"] = format_time(self.time)
            self._cel = to_cel(m)
        return self._cel


def load_events(path: str | None, model: Model) -> tuple[list[Event], set[str], int]:
    """The non-ignored events, their userIds, the message count."""
    events: list[Event] = []
    user_ids: set[str] = set()
    count = 0
    if not path:
        return events, user_ids, count
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            msg = json.loads(text)
            if not isinstance(msg, dict):
                raise SystemExit(f"{path}:{n}: not a JSON object")
            count += 1
            t = event_time(msg)
            if t is None:
                raise SystemExit(f"{path}:{n}: the message has no (valid) time")
            mid = msg.get("messageId")
            ev = Event(time=t, msg=msg, text=text, message_id=mid if isinstance(mid, str) else "")
            if model.ignore is not None and holds(model.ignore, {"event": ev.cel()}):
                continue
            uid = msg.get("userId")
            if isinstance(uid, str) and uid:
                user_ids.add(uid)
            events.append(ev)
    return events, user_ids, count


# ------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------

def merge(traits: dict, update: Any) -> None:
    if not isinstance(update, dict):
        return
    for k, v in update.items():
        if v is None:
            traits.pop(k, None)
        else:
            traits[k] = v


def round2(x: float) -> float:
    y = x * 100.0
    r = math.trunc(y)
    if abs(y - r) >= 0.5:
        r += math.copysign(1.0, y)
    return r / 100.0


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def grade_of(model: Model, dims: dict[str, float]) -> str | None:
    g = model.grade
    if not g:
        return None

    def pick(table: dict, value: float, after) -> str:
        best = None
        for k, thr in table.items():
            if value >= thr and (best is None or thr > best[1]):
                best = (k, thr)
        return best[0] if best else after(list(table.keys()))

    fit = pick(g.get("fit", {}), dims.get("fit", 0.0),
               lambda ks: chr(ord(max(ks)) + 1) if ks else "A")
    eng = pick(g.get("engagement", {}), dims.get("engagement", 0.0),
               lambda ks: str(max(int(k) for k in ks) + 1) if ks else "1")
    return f"{fit}{eng}"


class Scorer:
    def __init__(self, model: Model, as_of: int):
        self.model = model
        self.as_of = as_of
        self.dim_by_name = {d.name: d for d in model.dims}

    def score(self, lead_id: str, base: dict, events: list[Event], groups: dict,
              outcomes: list) -> dict:
        m, as_of = self.model, self.as_of
        # `events`: this lead's visible events up to as_of, sorted and deduplicated.
        traits = dict(base)
        for ev in events:
            if ev.msg.get("type") == "identify":
                merge(traits, ev.msg.get("traits"))
        account_id = None
        for ev in events:  # the latest group event wins
            if ev.msg.get("type") == "group" and isinstance(ev.msg.get("groupId"), str):
                account_id = ev.msg["groupId"]
        if account_id is None and isinstance(traits.get("account"), str) and traits["account"]:
            account_id = traits["account"]
        cel_traits = dict(traits)
        if account_id is not None:
            cel_traits["account"] = {**groups.get(account_id, {}), "id": account_id}
        cel_traits["id"] = lead_id
        lead_cel = self._lead_to_cel(cel_traits)
        base_act = {"lead": lead_cel}
        if account_id is not None:
            base_act["account"] = lead_cel[celtypes.StringType("account")]

        contributions = []
        per_dim = {d.name: 0.0 for d in m.dims}
        for rule in m.rules:
            pts, matched, last = self._rule(rule, traits, events, base_act)
            per_dim[rule.dimension] = per_dim.get(rule.dimension, 0.0) + pts
            contributions.append({"rule": rule.name, "dimension": rule.dimension,
                                  "points": pts, "matched": matched,
                                  "last_matched_at": format_time(last) if last is not None else None})
        dims = {}
        for d in m.dims:
            v = per_dim[d.name]
            if d.max is not None and v > d.max:
                v = float(d.max)
            if d.min is not None and v < d.min:
                v = float(d.min)
            dims[d.name] = v
        total = sum(d.weight * dims[d.name] for d in m.dims)
        stage = "lead"
        act = {name: celtypes.DoubleType(v) for name, v in dims.items()}
        act["total"] = celtypes.DoubleType(total)
        for name, prog in m.stages:
            if holds(prog, act):
                stage = name
        past = [o for o in outcomes if o[0] <= as_of]
        if past:
            kind = max(past)[2]
            stage = {"converted": "customer", "won": "customer"}.get(kind, kind)
        row = {"lead_id": lead_id, "dims": dims, "total": total, "stage": stage,
               "grade": grade_of(m, dims), "contributions": contributions}
        if m.calibration:
            a, b = m.calibration
            z = a + b * total
            row["probability"] = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
        return row

    def _lead_to_cel(self, traits: dict):
        plain = {}
        ts = {}
        for k, v in traits.items():
            if isinstance(v, tuple) and v and v[0] == "__ts__":
                ts[k] = v[1]
            else:
                plain[k] = v
        cel = to_cel(plain)
        for k, raw in ts.items():
            ms = parse_time(raw, allow_date=True)
            if ms is not None:
                cel[celtypes.StringType(k)] = celtypes.TimestampType(format_time(ms))
            else:
                cel[celtypes.StringType(k)] = celtypes.StringType(raw)
        return cel

    def _matching(self, rule: Rule, events: list[Event], base_act: dict) -> list[Event]:
        out = []
        for ev in events:
            act = dict(base_act)
            act["event"] = ev.cel()
            if holds(rule.cond, act):
                out.append(ev)
        return out

    @staticmethod
    def _per_day(evs: list[Event], n: int) -> list[Event]:
        by_day: dict[int, list[Event]] = {}
        for ev in evs:
            by_day.setdefault(ev.time // DAY_MS, []).append(ev)
        keep = set()
        for day_evs in by_day.values():
            for ev in day_evs[-n:] if n > 0 else []:
                keep.add(id(ev))
        return [ev for ev in evs if id(ev) in keep]

    def _rule(self, rule: Rule, traits: dict, events: list[Event], base_act: dict):
        as_of = self.as_of
        if rule.kind == "trait":
            ok = holds(rule.cond, base_act)
            return (rule.points if ok else 0.0), (1 if ok else 0), None
        if rule.kind == "event":
            evs = self._matching(rule, events, base_act)
            if rule.within is not None:
                evs = [e for e in evs if e.time > as_of - rule.within]
            if rule.per_day is not None:
                evs = self._per_day(evs, int(rule.per_day))
            if rule.limit is not None:
                evs = evs[-int(rule.limit):] if int(rule.limit) > 0 else []
            if rule.no_decay:
                hl = None
            elif rule.half_life is not None:
                hl = rule.half_life
            else:
                hl = self.dim_by_name[rule.dimension].half_life
            total = 0.0
            for e in evs:
                total += rule.points if hl is None else \
                    rule.points * 0.5 ** ((as_of - e.time) / hl)
            if rule.max_points is not None:
                total = max(-rule.max_points, min(rule.max_points, total))
            return total, len(evs), (evs[-1].time if evs else None)
        if rule.kind == "count":
            evs = self._matching(rule, events, base_act)
            if rule.per_day is not None:
                evs = self._per_day(evs, int(rule.per_day))
            evs = [e for e in evs if as_of - rule.within < e.time <= as_of]
            ok = len(evs) >= rule.at_least
            return (rule.points if ok else 0.0), len(evs), (evs[-1].time if evs else None)
        # inactivity
        evs = self._matching(rule, events, base_act)
        recent = [e for e in evs if as_of - rule.for_ms < e.time <= as_of]
        # anchor: the created_at trait when it is a timestamp or a date, else the first event
        anchor = None
        if "created_at" in traits:
            v = traits["created_at"]
            if isinstance(v, tuple) and v and v[0] == "__ts__":
                v = v[1]
            anchor = parse_time(v, allow_date=True)
        if anchor is None and events:
            anchor = events[0].time
        ok = not recent and anchor is not None and anchor <= as_of - rule.for_ms
        return (rule.points if ok else 0.0), (1 if ok else 0), (evs[-1].time if evs else None)


def score_all(model: Model, order: list[str], leads: dict, events: list[Event],
              user_ids: set[str], outcomes: dict, as_of: int) -> list[dict]:
    # Identity links: anonymousId -> (link time, userId); the earliest link wins.
    links: dict[str, tuple[int, str]] = {}

    def link(anon: Any, user: Any, t: int):
        if not isinstance(anon, str) or not isinstance(user, str) or not anon or not user:
            return
        cur = links.get(anon)
        if cur is None or (t, user) < cur:
            links[anon] = (t, user)

    for ev in events:
        typ = ev.msg.get("type")
        if typ == "identify" and ev.msg.get("userId") and ev.msg.get("anonymousId"):
            link(ev.msg.get("anonymousId"), ev.msg.get("userId"), ev.time)
        elif typ == "alias":
            link(ev.msg.get("previousId"), ev.msg.get("userId"), ev.time)

    per_lead: dict[str, list[Event]] = {}
    for ev in events:
        uid = ev.msg.get("userId")
        if isinstance(uid, str) and uid:
            owner = uid
        else:
            anon = ev.msg.get("anonymousId")
            ln = links.get(anon) if isinstance(anon, str) else None
            if ln is None or ln[0] > as_of:
                continue
            owner = ln[1]
        if ev.time > as_of:
            continue
        per_lead.setdefault(owner, []).append(ev)

    # Account traits: every group event up to as_of, in time order.
    groups: dict[str, dict] = {}
    group_events = sorted((e for e in events if e.msg.get("type") == "group"
                           and isinstance(e.msg.get("groupId"), str) and e.time <= as_of),
                          key=Event.key)
    for ev in group_events:
        merge(groups.setdefault(ev.msg["groupId"], {}), ev.msg.get("traits"))

    # Rows: the leads file, then every userId of a message that is not ignored (SPEC §3 "every
    # userId seen in the events"; a bot's id seen only in ignored messages is no lead), sorted.
    ids = list(order) + sorted(user_ids - set(order))
    scorer = Scorer(model, as_of)
    rows = []
    for lead_id in ids:
        evs = sorted(per_lead.get(lead_id, []), key=Event.key)
        dedup, seen_ids = [], set()
        for ev in evs:
            if ev.message_id:
                if ev.message_id in seen_ids:
                    continue
                seen_ids.add(ev.message_id)
            dedup.append(ev)
        rows.append(scorer.score(lead_id, leads.get(lead_id, {}), dedup, groups,
                                 outcomes.get(lead_id, [])))
    return rows


def write_rows(model: Model, rows: list[dict], fmt_name: str, explain: bool, out) -> None:
    dim_names = [d.name for d in model.dims]
    graded = model.grade is not None
    calibrated = model.calibration is not None
    if fmt_name == "csv":
        w = csv.writer(out, lineterminator="\n")
        header = ["lead_id", *dim_names, "total", "stage"]
        if graded:
            header.append("grade")
        if calibrated:
            header.append("probability")
        w.writerow(header)
        for r in rows:
            line = [r["lead_id"], *(fmt(round2(r["dims"][n])) for n in dim_names),
                    fmt(round2(r["total"])), r["stage"]]
            if graded:
                line.append(r["grade"])
            if calibrated:
                line.append(fmt(round(r["probability"], 4)))
            w.writerow(line)
    else:
        for r in rows:
            obj = {"lead_id": r["lead_id"]}
            for n in dim_names:
                obj[n] = round2(r["dims"][n])
            obj["total"] = round2(r["total"])
            obj["stage"] = r["stage"]
            if graded:
                obj["grade"] = r["grade"]
            if calibrated:
                obj["probability"] = round(r["probability"], 4)
            if explain:
                obj["contributions"] = [dict(c, points=round2(c["points"]))
                                        for c in r["contributions"]]
            out.write(json.dumps(obj) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", nargs="?", default="score", choices=["score"])
    p.add_argument("--model", required=True)
    p.add_argument("--leads", required=True)
    p.add_argument("--events")
    p.add_argument("--outcomes")
    p.add_argument("--as-of", required=True)
    p.add_argument("--id-column", default="id")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--explain", action="store_true")
    p.add_argument("--out")
    p.add_argument("--cel-runner", choices=["compiled", "interpreted"], default="compiled",
                   help="celpy runner (compiled: transpiled to Python, faster)")
    p.add_argument("--stats", action="store_true", help="print counts and timing to stderr")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    as_of = parse_time(a.as_of)
    if as_of is None:
        raise SystemExit(f"--as-of: not an RFC 3339 timestamp: {a.as_of!r}")
    _AS_OF_MS[0] = as_of
    cel = Cel(a.cel_runner)
    model = load_model(a.model, cel)
    order, leads = load_leads(a.leads, model, a.id_column)
    outcomes = load_outcomes(a.outcomes)
    events, user_ids, n_messages = load_events(a.events, model)
    rows = score_all(model, order, leads, events, user_ids, outcomes, as_of)
    if a.out and a.out != "-":
        with open(a.out, "w", newline="", encoding="utf-8") as f:
            write_rows(model, rows, a.format, a.explain, f)
    else:
        write_rows(model, rows, a.format, a.explain, sys.stdout)
    if a.stats:
        dt = time.perf_counter() - t0
        sys.stderr.write(f"reference: {len(rows)} leads, {n_messages} messages "
                         f"({len(events)} after ignore), {dt:.2f} s, "
                         f"{n_messages / dt if dt > 0 else 0:.0f} messages/s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
