#!/usr/bin/env python3
"""Distinct schemathesis failures from NDJSON reports, grouped by operation, each with a curl command.

    summarize.py REPORT_DIR            (reads REPORT_DIR/*.ndjson, writes REPORT_DIR/summary.txt)

Schemathesis prints every failing test case; the same defect often shows up in many of them (the
same undocumented 401 on every phase). Here a failure is identified by operation, check, response
status, the error `code` in the body and, for schema violations, the schema path. Long request bodies
are written next to the summary and referenced with `--data-binary @file`.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import shlex
import sys
from collections import Counter, OrderedDict


def _decode(content) -> str:
    if not content:
        return ""
    if isinstance(content, dict) and "$base64" in content:
        return base64.b64decode(content["$base64"]).decode("utf-8", "replace")
    if isinstance(content, dict) and "string" in content:
        return content["string"]
    return str(content)


def _body_code(text: str):
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value.get("code") if isinstance(value, dict) else None


def _curl(case: dict, request: dict, bodies_dir: str, name: str) -> str:
    parts = ["curl", "-sS", "-i", "-X", request.get("method", case.get("method", "GET"))]
    headers = dict(case.get("headers") or {})
    body_present = "body" in case
    media_type = case.get("media_type")
    if body_present and media_type and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = media_type
    for key, value in headers.items():
        parts += ["-H", f"{key}: {value}"]
    if body_present:
        body = case["body"]
        if media_type and "json" in media_type:
            data = json.dumps(body, ensure_ascii=False)
        elif isinstance(body, (dict, list)) or body is None or isinstance(body, (bool, int, float)):
            data = json.dumps(body)
        else:
            data = str(body)
        if bodies_dir is None:
            parts += ["--data-binary", data]
        elif len(data) > 300 or "\n" in data:
            os.makedirs(bodies_dir, exist_ok=True)
            path = os.path.join(bodies_dir, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(data)
            parts += ["--data-binary", "@" + path]
        else:
            parts += ["--data-binary", data]
    parts.append(request.get("uri", ""))
    return " ".join(shlex.quote(p) for p in parts)


def collect(report_dir: str):
    found: "OrderedDict[tuple, dict]" = OrderedDict()
    errors: "OrderedDict[tuple, dict]" = OrderedDict()
    seen: dict = {}
    bodies_dir = os.path.join(report_dir, "bodies")
    for path in sorted(glob.glob(os.path.join(report_dir, "*.ndjson"))):
        run = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            for line in f:
                event = json.loads(line)
                finished = event.get("ScenarioFinished")
                if finished is None:
                    continue
                recorder = finished.get("recorder") or {}
                label = recorder.get("label", "?")
                cases = recorder.get("cases") or {}
                interactions = recorder.get("interactions") or {}
                if finished.get("phase") != "stateful":
                    for case_id, interaction in interactions.items():
                        case = (cases.get(case_id) or {}).get("value") or {}
                        if f"{case.get('method', '').upper()} {case.get('path')}" == label:
                            status = (interaction.get("response") or {}).get("status_code")
                            seen.setdefault(run, {}).setdefault(label, Counter())[status] += 1
                for case_id, checks in (recorder.get("checks") or {}).items():
                    for check in checks:
                        if check.get("status") != "failure":
                            continue
                        failure = (check.get("failure_info") or {}).get("failure") or {}
                        interaction = interactions.get(case_id) or {}
                        response = interaction.get("response") or {}
                        text = _decode(response.get("content"))
                        status = response.get("status_code")
                        operation = failure.get("operation") or label
                        # Stateful scenarios are labelled by the link; the failing request by its case.
                        case = (cases.get(case_id) or {}).get("value") or {}
                        if case.get("method") and case.get("path"):
                            operation = f"{case['method'].upper()} {case['path']}"
                        detail = failure.get("schema_path") or failure.get("title")
                        key = (operation, check.get("name"), failure.get("title"), status, _body_code(text), str(detail))
                        entry = found.get(key)
                        if entry is None:
                            request = interaction.get("request") or {}
                            name = f"{len(found) + 1:03d}-{case_id}.body"
                            found[key] = {
                                "body_file": name,
                                "operation": operation,
                                "check": check.get("name"),
                                "code": failure.get("code"),
                                "title": failure.get("title"),
                                "message": failure.get("message", ""),
                                "status": status,
                                "content_type": ",".join((response.get("headers") or {}).get("content-type", [])),
                                "response": text[:400],
                                "curl": _curl(case, request, bodies_dir, name),
                                "runs": [run],
                                "count": 1,
                                "phase": finished.get("phase"),
                            }
                        else:
                            entry["count"] += 1
                            if run not in entry["runs"]:
                                entry["runs"].append(run)
                            # Keep the shortest reproduction.
                            request = interaction.get("request") or {}
                            curl = _curl(case, request, None, None)
                            if len(curl) < len(entry["curl"]):
                                entry["curl"] = _curl(case, request, bodies_dir, entry["body_file"])
                                entry["response"] = text[:400]
            # Errors (a request that could not be built or sent) are failures of the run too.
        with open(path, encoding="utf-8") as f:
            for line in f:
                event = json.loads(line)
                err = event.get("NonFatalError") or event.get("FatalError")
                if err:
                    label = err.get("label") or (err.get("info") or {}).get("title") or "?"
                    message = json.dumps(err.get("info") or err.get("value") or err)[:500]
                    errors.setdefault((run, label, message), {"run": run, "label": label, "message": message})
    return found, errors, seen


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: summarize.py REPORT_DIR")
    report_dir = sys.argv[1]
    found, errors, seen = collect(report_dir)
    out = []
    by_op: "OrderedDict[str, list]" = OrderedDict()
    for entry in sorted(found.values(), key=lambda e: (e["operation"].split(" ", 1)[-1], e["operation"], str(e["status"]))):
        by_op.setdefault(entry["operation"], []).append(entry)
    out.append(f"{len(found)} distinct failures in {len(by_op)} operations; {len(errors)} errors")
    for operation, entries in by_op.items():
        out.append("")
        out.append(f"## {operation}")
        for e in entries:
            message = " / ".join(line.strip() for line in e["message"].splitlines() if line.strip())
            out.append(f"- [{e['check']}] {e['title']}: {message}")
            out.append(
                f"  got {e['status']} {e['content_type']} ({e['count']}x; runs: {', '.join(e['runs'])}; first in {e['phase']})"
            )
            out.append(f"  body: {e['response']}")
            out.append(f"  {e['curl']}")
    out.append("")
    out.append("## responses seen per operation (status: count; examples, coverage and fuzzing phases)")
    for run, ops in sorted(seen.items(), key=lambda kv: (kv[0] != "valid", kv[0])):
        out.append(f"{run}:")
        for label in sorted(ops, key=lambda l: (l.split(" ", 1)[-1], l)):
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(ops[label].items(), key=lambda kv: str(kv[0])))
            out.append(f"  {label:45} {counts}")
    if errors:
        out.append("")
        out.append("## errors")
        for e in errors.values():
            out.append(f"- {e['run']}: {e['label']}: {e['message']}")
    text = "\n".join(out) + "\n"
    with open(os.path.join(report_dir, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
