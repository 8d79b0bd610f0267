#!/usr/bin/env python3
"""bench/models/peer10.toml written as one DuckDB SQL query: the peer of `leadscore score` in
bench/score_vs_duckdb.sh. What an analyst with DuckDB would write, with SPEC §2.2's semantics for
the parts of it that peer10 uses.

    python3 bench/duckdb_score.py --leads L.csv --events E.jsonl|E.parquet \
        --as-of 2024-07-01T00:00:00Z --out scores.jsonl [--threads 2] [--print-sql]
    python3 bench/duckdb_score.py --to-parquet E.jsonl E.parquet     # the Parquet copy

Needs `pip install duckdb`. Events are JSON Lines of Segment messages or Parquet with the same
columns (`properties`, `traits`, `context` as JSON text, `timestamp` a timestamp or RFC 3339
text), chosen by the file's magic bytes. Writes JSON Lines like `leadscore score --format jsonl`:
lead_id, fit, engagement, total, stage (numbers rounded to 2 decimals), leads file order first,
then the other user ids by id.

The semantics, as SPEC §2.2 and bench/reference_score.py read them:
- event time: `timestamp`, else `originalTimestamp + (receivedAt - sentAt)`, else
  `originalTimestamp`, else `receivedAt`; in milliseconds (TIMESTAMPTZ casts honour offsets);
- `[events] ignore` (user agent matches bot|crawler|spider|headless) drops messages first;
- identity: an identify with userId and anonymousId, or an alias (previousId -> userId), links
  the anonymous id from the link's time; the earliest link wins (tie: smaller userId); an
  anonymous-only message belongs to the linked lead and exists at as_of when its own time and the
  link time are both <= as_of; decay and windows use its own time;
- per lead: messages up to as_of, one per messageId (the earliest);
- traits: the leads CSV, then each identify's `traits` in (time, messageId) order; a JSON null
  removes the trait; `title` must be a string and `employees` a number for their rules to hold;
- event rules: points x 0.5^((as_of - t) / half_life), `within` is (as_of - within, as_of],
  `limit` keeps the most recent N (after `within`), `max_points` clamps the rule's sum;
- count rule: >= 5 matching messages in (as_of - 30d, as_of]; inactivity: no page/track in
  (as_of - 45d, as_of] and the `created_at` trait (else the first message) <= as_of - 45d;
- dimensions clamped (fit [0, 30], engagement [-15, 50]); total = fit + engagement; stage is the
  last of mql (total >= 30), sql (total >= 60 && fit >= 20) that holds, else lead;
- rows: every id of the leads file and every userId of a message not ignored (at any time).
Not reproduced (absent from peer10's data): ties between two different messages with the same
messageId and the same millisecond (the engine breaks them by the message text), fields of
unexpected JSON types inside `properties`/`context` (read here as text).
"""

from __future__ import annotations

import argparse
import sys
import time

try:
    import duckdb
except ImportError:  # pragma: no cover - reported to the user
    sys.stderr.write("duckdb_score.py needs DuckDB: pip install duckdb\n")
    sys.exit(3)

DAY_MS = 86_400_000

# Each source yields the same columns: type, mid, at (ms), uid, anon, prev, ev, path, form, ua,
# traits (JSON).
TIME_COLUMNS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")


def event_time(expr) -> str:
    """SQL for the resolved event time in ms; `expr(col)` gives a column as TIMESTAMPTZ."""
    t, o, s, r = (f"epoch_ms({expr(c)})" for c in TIME_COLUMNS)
    return f"coalesce({t}, {o} + ({r} - {s}), {o}, {r})"


def jsonl_source(path: str) -> str:
    cols = ", ".join(
        [f"{c}: 'VARCHAR'" for c in ("type", "messageId", "userId", "anonymousId", "previousId", "event")]
        + [f"{c}: 'TIMESTAMPTZ'" for c in TIME_COLUMNS]
        + ["properties: 'STRUCT(path VARCHAR, form VARCHAR)'",
           "context: 'STRUCT(userAgent VARCHAR)'",
           "traits: 'JSON'"])
    return f"""
    SELECT type, messageId AS mid, {event_time(lambda c: f'"{c}"')} AS tm,
           nullif(userId, '') AS uid, nullif(anonymousId, '') AS anon,
           nullif(previousId, '') AS prev, event AS ev,
           properties.path AS path, properties.form AS form, context.userAgent AS ua, traits
    FROM read_json({sql_str(path)}, format = 'newline_delimited', columns = {{{cols}}})"""


def parquet_source(con, path: str) -> str:
    names = {r[0]: r[1] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({sql_str(path)})").fetchall()}

    def col(c: str, json_path: str | None = None) -> str:
        if c not in names:
            return "NULL::VARCHAR"
        if json_path:
            return f"json_extract_string(\"{c}\", '{json_path}')"
        return f"CAST(\"{c}\" AS VARCHAR)"

    def ts(c: str) -> str:
        if c not in names:
            return "NULL::TIMESTAMPTZ"
        if names[c].startswith("TIMESTAMP"):
            # A timestamp column without a zone holds UTC (as leadscore reads it).
            return f"\"{c}\"::TIMESTAMP::TIMESTAMPTZ" if names[c] == "TIMESTAMP" else f"\"{c}\""
        return f"TRY_CAST(\"{c}\" AS TIMESTAMPTZ)"

    traits = "CAST(\"traits\" AS JSON)" if "traits" in names else "NULL::JSON"
    return f"""
    SELECT {col('type')} AS type, {col('messageId')} AS mid, {event_time(ts)} AS tm,
           nullif({col('userId')}, '') AS uid, nullif({col('anonymousId')}, '') AS anon,
           nullif({col('previousId')}, '') AS prev, {col('event')} AS ev,
           {col('properties', '$.path')} AS path, {col('properties', '$.form')} AS form,
           {col('context', '$.userAgent')} AS ua, {traits} AS traits
    FROM read_parquet({sql_str(path)})"""


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def decay(half_life_days: float, t: str = "tm") -> str:
    return f"pow(0.5, (AS_OF - {t}) / {half_life_days * DAY_MS:.1f})"


def score_sql(source: str, leads: str, as_of_ms: int) -> str:
    d30 = decay(30)  # the engagement dimension's half-life
    sql = f"""
WITH
msgs AS ({source}),
-- [events] ignore, before anything else
m AS (
  SELECT * EXCLUDE (ua) FROM msgs
  WHERE NOT coalesce(regexp_matches(ua, '(?i)bot|crawler|spider|headless'), false)
),
-- anonymousId -> userId: the earliest link wins (ties: the smaller userId)
links AS (
  SELECT anon, min({{'tm': tm, 'uid': uid}}) AS l
  FROM (
    SELECT anon, uid, tm FROM m
    WHERE type = 'identify' AND uid IS NOT NULL AND anon IS NOT NULL AND anon <> uid
    UNION ALL
    SELECT prev, uid, tm FROM m
    WHERE type = 'alias' AND uid IS NOT NULL AND prev IS NOT NULL AND prev <> uid
  )
  GROUP BY anon
),
-- each message's lead, restricted to what exists at as_of
attributed AS (
  SELECT uid AS lead, type, mid, tm, ev, path, form, traits FROM m
  WHERE uid IS NOT NULL AND tm <= AS_OF
  UNION ALL
  SELECT links.l.uid, type, mid, tm, ev, path, form, traits FROM m JOIN links USING (anon)
  WHERE m.uid IS NULL AND tm <= AS_OF AND links.l.tm <= AS_OF
),
-- one message per (lead, messageId): the earliest
e AS (
  SELECT * FROM attributed WHERE mid IS NOT NULL
  QUALIFY row_number() OVER (PARTITION BY lead, mid ORDER BY tm) = 1
  UNION ALL
  SELECT * FROM attributed WHERE mid IS NULL
),
per_lead AS (
  SELECT lead,
    min(tm) AS first_at,
    -- identify traits: the latest value of each trait the model reads (JSON null = removed)
    arg_max(traits -> '$.title', {{'tm': tm, 'mid': mid}})
      FILTER (WHERE type = 'identify' AND (traits -> '$.title') IS NOT NULL) AS title_j,
    arg_max(traits -> '$.employees', {{'tm': tm, 'mid': mid}})
      FILTER (WHERE type = 'identify' AND (traits -> '$.employees') IS NOT NULL) AS employees_j,
    arg_max(traits -> '$.created_at', {{'tm': tm, 'mid': mid}})
      FILTER (WHERE type = 'identify' AND (traits -> '$.created_at') IS NOT NULL) AS created_j,
    -- Pricing page: 5, dimension decay
    5 * sum({d30}) FILTER (WHERE type = 'page' AND starts_with(path, '/pricing')) AS r_pricing,
    -- Careers page: -10, limit 3
    -10 * list_sum(list_transform(
      max(tm, 3) FILTER (WHERE type = 'page' AND starts_with(path, '/careers')),
      lambda t: {decay(30, 't')})) AS r_careers,
    -- Blog post: 2, within 90d, limit 5
    2 * list_sum(list_transform(
      max(tm, 5) FILTER (WHERE type = 'page' AND starts_with(path, '/blog/') AND tm > AS_OF - {90 * DAY_MS}),
      lambda t: {decay(30, 't')})) AS r_blog,
    -- Webinar: 8, within 60d
    8 * sum({d30}) FILTER (WHERE type = 'track' AND ev IN ('Webinar Registered', 'Webinar Attended')
                           AND tm > AS_OF - {60 * DAY_MS}) AS r_webinar,
    -- Product usage: 3, half_life 7d, max_points 12
    -- (least/greatest skip NULLs: a lead without usage must give NULL, not -12)
    CASE WHEN count(*) FILTER (WHERE type = 'track' AND ev IN ('Logged In', 'Report Created')) > 0
      THEN least(12, greatest(-12, 3 * sum({decay(7)})
        FILTER (WHERE type = 'track' AND ev IN ('Logged In', 'Report Created')))) END AS r_usage,
    -- Demo request: 25
    25 * sum({d30}) FILTER (WHERE type = 'track' AND (ev = 'Demo Requested'
      OR (ev = 'Form Submitted' AND form IN ('demo-request', 'contact-sales')))) AS r_demo,
    -- Opened 5+ e-mails in 30 days: count
    count(*) FILTER (WHERE type = 'track' AND ev = 'Email Opened' AND tm > AS_OF - {30 * DAY_MS}) AS n_opened,
    -- Went cold: the latest page or track
    max(tm) FILTER (WHERE type IN ('page', 'track')) AS last_active
  FROM e
  GROUP BY lead
),
leads AS (
  SELECT id, row_number() OVER () AS ord, title, employees, created_at
  FROM read_csv({sql_str(leads)}, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"')
),
ids AS (
  SELECT id, ord FROM leads
  UNION
  SELECT DISTINCT uid, NULL FROM m WHERE uid IS NOT NULL AND uid NOT IN (SELECT id FROM leads)
),
traits AS (
  SELECT ids.id, ids.ord, p.*,
    CASE WHEN p.title_j IS NULL THEN l.title
         WHEN json_type(p.title_j) = 'VARCHAR' THEN p.title_j ->> '$' END AS title,
    CASE WHEN p.employees_j IS NULL THEN TRY_CAST(l.employees AS DOUBLE)
         WHEN json_type(p.employees_j) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN p.employees_j::DOUBLE END AS employees,
    coalesce(
      CASE WHEN p.created_j IS NULL THEN epoch_ms(TRY_CAST(l.created_at AS TIMESTAMPTZ))
           WHEN json_type(p.created_j) = 'VARCHAR' THEN epoch_ms(TRY_CAST(p.created_j ->> '$' AS TIMESTAMPTZ))
           WHEN json_type(p.created_j) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN
             CASE WHEN abs(p.created_j::DOUBLE) > 1e11 THEN p.created_j::DOUBLE
                  ELSE p.created_j::DOUBLE * 1000 END::BIGINT END,
      p.first_at) AS anchor
  FROM ids LEFT JOIN leads l USING (id) LEFT JOIN per_lead p ON p.lead = ids.id
),
raw AS (
  SELECT id, ord,
    CASE WHEN regexp_matches(title, '(?i)\\b(vp|vice president|head|director|chief|ceo|cto|cfo|founder)\\b')
         THEN 20 ELSE 0 END
    + CASE WHEN employees >= 200 THEN 15 ELSE 0 END AS fit_raw,
    coalesce(r_pricing, 0) + coalesce(r_careers, 0) + coalesce(r_blog, 0) + coalesce(r_webinar, 0)
    + coalesce(r_usage, 0) + coalesce(r_demo, 0)
    + CASE WHEN coalesce(n_opened, 0) >= 5 THEN 10 ELSE 0 END
    + CASE WHEN (last_active IS NULL OR last_active <= AS_OF - {45 * DAY_MS})
                AND anchor IS NOT NULL AND anchor <= AS_OF - {45 * DAY_MS} THEN -15 ELSE 0 END AS eng_raw
  FROM traits
),
dims AS (
  SELECT id, ord,
    least(greatest(fit_raw, 0), 30)::DOUBLE AS fit,
    least(greatest(eng_raw, -15), 50)::DOUBLE AS engagement
  FROM raw
)
SELECT id AS lead_id, round(fit, 2) AS fit, round(engagement, 2) AS engagement,
  round(fit + engagement, 2) AS total,
  CASE WHEN fit + engagement >= 60 AND fit >= 20 THEN 'sql'
       WHEN fit + engagement >= 30 THEN 'mql'
       ELSE 'lead' END AS stage
FROM dims
ORDER BY ord NULLS LAST, id
"""
    return sql.replace("AS_OF", f"{as_of_ms}::BIGINT")


def is_parquet(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


def to_parquet(con, src: str, dst: str) -> None:
    """The JSON Lines events as Parquet: Segment columns, nested objects as JSON text, the
    timestamp as a UTC timestamp column."""
    con.execute(f"""
    COPY (
      SELECT type, messageId, timestamp::TIMESTAMPTZ AS timestamp, userId, anonymousId, previousId,
             groupId, event, name,
             CAST(properties AS VARCHAR) AS properties, CAST(traits AS VARCHAR) AS traits,
             CAST(context AS VARCHAR) AS context
      FROM read_json({sql_str(src)}, format = 'newline_delimited', columns = {{
        type: 'VARCHAR', messageId: 'VARCHAR', timestamp: 'VARCHAR', userId: 'VARCHAR',
        anonymousId: 'VARCHAR', previousId: 'VARCHAR', groupId: 'VARCHAR', event: 'VARCHAR',
        name: 'VARCHAR', properties: 'JSON', traits: 'JSON', context: 'JSON'}})
    ) TO {sql_str(dst)} (FORMAT parquet, COMPRESSION zstd)""")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--leads")
    p.add_argument("--events")
    p.add_argument("--as-of", default="2024-07-01T00:00:00Z")
    p.add_argument("--out")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--print-sql", action="store_true", help="print the query and exit")
    p.add_argument("--explain-analyze", action="store_true", help="print DuckDB's profile to stderr")
    p.add_argument("--to-parquet", nargs=2, metavar=("JSONL", "PARQUET"),
                   help="write the events as Parquet and exit")
    a = p.parse_args()

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    con.execute("SET TimeZone = 'UTC'")
    if a.to_parquet:
        to_parquet(con, *a.to_parquet)
        sys.stderr.write(f"wrote {a.to_parquet[1]} in {time.perf_counter() - t0:.1f} s\n")
        return 0
    if not (a.leads and a.events and a.out):
        p.error("--leads, --events and --out are required")
    as_of = con.execute(f"SELECT epoch_ms({sql_str(a.as_of)}::TIMESTAMPTZ)").fetchone()[0]
    source = parquet_source(con, a.events) if is_parquet(a.events) else jsonl_source(a.events)
    sql = score_sql(source, a.leads, as_of)
    if a.print_sql:
        print(sql)
        return 0
    if a.explain_analyze:
        for row in con.execute("EXPLAIN ANALYZE " + sql).fetchall():
            sys.stderr.write(row[1] + "\n")
    n = con.execute(f"COPY ({sql}) TO {sql_str(a.out)} (FORMAT json)").fetchone()[0]
    sys.stderr.write(f"duckdb {duckdb.__version__}: {n} leads in {time.perf_counter() - t0:.2f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
