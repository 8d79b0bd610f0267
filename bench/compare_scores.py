#!/usr/bin/env python3
"""Compares two score files (JSON Lines as `leadscore score --format jsonl` writes them) lead by
lead: the same set of lead ids, every number within a tolerance, the same stage (and grade, if
any). Exit 0 when every lead agrees; otherwise prints the first differing leads with both values
and exits 1.

    python3 bench/compare_scores.py A.jsonl B.jsonl [--names leadscore,duckdb] [--tol 0.01] [--show 10]
"""

from __future__ import annotations

import argparse
import json
import sys


def load(path: str) -> dict[str, dict]:
    rows = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            lead = row.pop("lead_id")
            if lead in rows:
                raise SystemExit(f"{path}:{n}: lead {lead!r} appears twice")
            rows[lead] = row
    return rows


def differs(a: dict, b: dict, tol: float) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) \
                and not isinstance(x, bool) and not isinstance(y, bool):
            if abs(x - y) > tol + 1e-9:
                out.append(key)
        elif x != y:
            out.append(key)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--names", default="a,b")
    p.add_argument("--tol", type=float, default=0.01)
    p.add_argument("--show", type=int, default=10)
    args = p.parse_args()
    na, nb = args.names.split(",")
    a, b = load(args.a), load(args.b)
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    bad = []
    for lead in a:
        if lead in b:
            keys = differs(a[lead], b[lead], args.tol)
            if keys:
                bad.append((lead, keys))
    if not (only_a or only_b or bad):
        print(f"all {len(a)} leads agree ({na} vs {nb}: every number within {args.tol}, same stage)")
        return 0
    print(f"DISAGREEMENT between {na} ({args.a}) and {nb} ({args.b}):", file=sys.stderr)
    print(f"  {len(a)} vs {len(b)} leads; only in {na}: {len(only_a)}, only in {nb}: {len(only_b)}, "
          f"differing: {len(bad)}", file=sys.stderr)
    for lead in only_a[: args.show]:
        print(f"  only in {na}: {lead} {json.dumps(a[lead])}", file=sys.stderr)
    for lead in only_b[: args.show]:
        print(f"  only in {nb}: {lead} {json.dumps(b[lead])}", file=sys.stderr)
    for lead, keys in bad[: args.show]:
        print(f"  {lead}: differs in {', '.join(keys)}", file=sys.stderr)
        print(f"    {na}: {json.dumps(a[lead])}", file=sys.stderr)
        print(f"    {nb}: {json.dumps(b[lead])}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
