#!/usr/bin/env python3
"""What rewriting every scored lead row costs SQLite itself, and which part of it is the indexes:
the peer behind the full rescore's write design.

    python3 bench/million_leads.py --leads 200000 --keep      # prints `kept DIR`
    python3 bench/lead_rows_peer.py DIR/leads.db

On a copy of the file, for each variant: SQLite (Python's sqlite3, the server's pragmas) updates
every lead row, the columns a rescore writes, with new values, in transactions of 10,000 rows:
- `as is`: the table with all its indexes (what the server's rescore did before it dropped them);
- `without the list indexes`: leads_total, leads_updated, leads_stage dropped first, then built
  again (the time to build them is reported apart);
- `without any secondary index`;
- `small rows`: all indexes, but empty JSON and state columns (how much the row size matters).
Standard library only.
"""
import os
import shutil
import sqlite3
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from million_leads import open_like_server, rewrite_lead_rows  # noqa: E402

LIST = [("leads_total", "leads (total, id)"), ("leads_updated", "leads (updated_at, id)"),
        ("leads_stage", "leads (stage, total)")]
OTHER = ["leads_account", "leads_due"]


def run(src, drop, small):
    work = tempfile.mkdtemp(prefix="lead-rows-")
    db = os.path.join(work, "leads.db")
    shutil.copy(src, db)
    con = open_like_server(db)
    for name in drop:
        con.execute(f"DROP INDEX IF EXISTS {name}")
    n, rewrite = rewrite_lead_rows(con, blank=small)
    t = time.time()
    for name, on in LIST:
        if name in drop:
            con.execute(f"CREATE INDEX {name} ON {on}")
    build = time.time() - t
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    return n, rewrite, build


def main():
    src = sys.argv[1]
    con = sqlite3.connect(src)
    sizes = con.execute("SELECT avg(length(state)), avg(length(contributions)), avg(length(current_traits)) "
                        "FROM leads").fetchone()
    con.close()
    print(f"average bytes per row: state {sizes[0]:.0f}, contributions {sizes[1]:.0f}, traits {sizes[2]:.0f}")
    print("| variant | rows | rewrite | build the list indexes again | total |")
    print("|---|---:|---:|---:|---:|")
    for label, drop, small in (("as is", [], False),
                               ("without the list indexes", [n for n, _ in LIST], False),
                               ("without any secondary index", [n for n, _ in LIST] + OTHER, False),
                               ("small rows, all indexes", [], True)):
        n, rewrite, build = run(src, drop, small)
        print(f"| {label} | {n:,} | {rewrite:.2f} s | {build:.2f} s | {rewrite + build:.2f} s |")


if __name__ == "__main__":
    main()
