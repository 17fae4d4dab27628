"""Realistic synthetic data for the four tables, loaded with COPY.

``scale`` is the number of prospects. The other tables follow: one user per 500
prospects (at least 5), one campaign per 100 prospects, one meeting per 5 prospects and one
AI conversation message per prospect. Volumes per user are skewed (Zipf, s = 1.1: at
1M prospects the heaviest of 2,000 users owns 17%, most users own little), statuses follow a
funnel, and times spread over the last year with more recent rows (meetings from 90 days ago
to 30 days ahead). The same ``seed`` gives the same data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator.core import DatabaseError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import psycopg

CHUNK_ROWS = 100_000
TABLES = ("campaigns", "prospects", "meetings", "ai_conversation_log")

_FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Inès", "Jonas",
          "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Yuki"]
_LAST = ["Andersen", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hughes",
         "Ivanova", "Jensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Patel"]
_COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries",
              "Wayne Logistics", "Hooli", "Vandelay Imports", "Soylent, Inc.", "Tyrell Systems"]
_TITLES = ["CTO", "VP Sales", "Head of Growth", "Founder", "Engineering Manager",
           "Procurement Lead", "COO", "Marketing Director"]
_MESSAGES = [
    "Draft a first message to this prospect about their recent funding round.",
    "Hi {name}, congrats on the launch! Would a 15-minute call next week make sense?",
    "Summarise the prospect's profile in two sentences.",
    "Follow-up: the prospect asked for pricing; propose the team plan.",
    'Rewrite the message to be shorter and mention "case study" once.',
]


@dataclass
class SeedResult:
    """Rows loaded per table and the time it took."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped_row_triggers: bool = False

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def _uuids(tag: int, count: int) -> np.ndarray:
    """Deterministic version-4-shaped UUID strings for row numbers 0..count-1."""
    import numpy as np

    return np.array([f"{tag:08x}-0000-4000-8000-{i:012x}" for i in range(count)], dtype=object)


def _nullable(mask: np.ndarray, values: Any) -> np.ndarray:
    """An object array holding ``values`` where ``mask`` is true and None (SQL NULL) elsewhere."""
    import numpy as np

    out = np.full(len(mask), None, dtype=object)
    out[mask] = values[mask] if isinstance(values, np.ndarray) else values
    return out


def _skewed_owner(rng: np.random.Generator, users: int, count: int) -> np.ndarray:
    import numpy as np

    weights = 1.0 / np.arange(1, users + 1) ** 1.1
    return rng.choice(users, size=count, p=weights / weights.sum())


def _pick(rng: np.random.Generator, values: list[str], probabilities: list[float] | None,
          count: int) -> np.ndarray:
    import numpy as np

    options = np.array(values, dtype=object)
    if probabilities is None:
        return options[rng.integers(0, len(values), size=count)]
    return rng.choice(options, size=count, p=probabilities)


def _recent_times(rng: np.random.Generator, now: pd.Timestamp, days: float, count: int,
                  skew: float = 1.6) -> pd.DatetimeIndex:
    """Times in the last ``days`` days, denser near ``now``."""
    import pandas as pd

    ago = days * 86_400 * rng.random(count) ** skew
    return now - pd.to_timedelta(ago, unit="s")


def _frames(scale: int, seed: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """Generate the four tables' rows in dependency order."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    users = max(5, scale // 500)
    user_ids = _uuids(0xA0, users)

    n_campaigns = max(users, scale // 100)
    campaign_owner = np.sort(_skewed_owner(rng, users, n_campaigns))
    campaign_ids = _uuids(0xC0, n_campaigns)
    campaign_created = _recent_times(rng, now, 365, n_campaigns)
    yield "campaigns", pd.DataFrame({
        "id": campaign_ids,
        "user_id": user_ids[campaign_owner],
        "name": [f"Campaign {i}" for i in range(n_campaigns)],
        "status": _pick(rng, ["draft", "active", "paused", "completed", "archived"],
                        [0.10, 0.40, 0.15, 0.30, 0.05], n_campaigns),
        "daily_limit": rng.choice([25, 50, 100, 200], size=n_campaigns),
        "created_at": campaign_created,
        "updated_at": campaign_created,
    })

    prospect_owner = _skewed_owner(rng, users, scale)
    starts = np.searchsorted(campaign_owner, prospect_owner, side="left")
    ends = np.searchsorted(campaign_owner, prospect_owner, side="right")
    has_campaign = (ends > starts) & (rng.random(scale) < 0.8)
    chosen = starts + (rng.random(scale) * np.maximum(ends - starts, 1)).astype(np.int64)
    campaign_of = _nullable(has_campaign, campaign_ids[np.minimum(chosen, n_campaigns - 1)])
    prospect_ids = _uuids(0xB0, scale)
    funnel = ["new", "enriched", "contacted", "replied", "meeting_booked", "won", "lost"]
    status = _pick(rng, funnel, [0.30, 0.20, 0.25, 0.10, 0.07, 0.03, 0.05], scale)
    first = _pick(rng, _FIRST, None, scale)
    last = _pick(rng, _LAST, None, scale)
    full_name = first + " " + last
    prospect_created = _recent_times(rng, now, 365, scale)
    email = _nullable(rng.random(scale) < 0.6,
                      np.char.lower((first + "." + last + "@example.com").astype(str)))
    yield "prospects", pd.DataFrame({
        "id": prospect_ids,
        "user_id": user_ids[prospect_owner],
        "campaign_id": campaign_of,
        "linkedin_url": [f"https://www.linkedin.com/in/prospect-{i}" for i in range(scale)],
        "full_name": full_name,
        "company": _pick(rng, _COMPANIES, None, scale),
        "title": _pick(rng, _TITLES, None, scale),
        "email": email,
        "status": status,
        "enrichment": _nullable(status != "new", '{"source": "apollo", "employees": 120}'),
        "created_at": prospect_created,
        "updated_at": prospect_created,
    })

    n_meetings = max(1, scale // 5)
    of_prospect = rng.integers(0, scale, size=n_meetings)
    offset_days = rng.uniform(-90, 30, size=n_meetings)
    scheduled = now + pd.to_timedelta(offset_days * 86_400, unit="s")
    past_status = _pick(rng, ["completed", "cancelled", "no_show"], [0.75, 0.15, 0.10], n_meetings)
    yield "meetings", pd.DataFrame({
        "id": _uuids(0xD0, n_meetings),
        "user_id": user_ids[prospect_owner[of_prospect]],
        "prospect_id": prospect_ids[of_prospect],
        "status": np.where(offset_days > 0, "scheduled", past_status),
        "scheduled_at": scheduled,
        "duration_min": rng.choice([15, 30, 45, 60], size=n_meetings),
        "meeting_url": _nullable(rng.random(n_meetings) < 0.9, "https://meet.example.com/abc"),
        "created_at": scheduled - pd.to_timedelta(rng.uniform(1, 14, n_meetings), unit="D"),
    })

    n_logs = scale
    about = rng.integers(0, scale, size=n_logs)
    with_prospect = rng.random(n_logs) < 0.9
    yield "ai_conversation_log", pd.DataFrame({
        "user_id": user_ids[prospect_owner[about]],
        "prospect_id": _nullable(with_prospect, prospect_ids[about]),
        "role": _pick(rng, ["system", "user", "assistant"], [0.1, 0.4, 0.5], n_logs),
        "model": _pick(rng, ["claude-sonnet-4-5", "claude-haiku-4-5"], [0.7, 0.3], n_logs),
        "content": _pick(rng, _MESSAGES, None, n_logs),
        "input_tokens": rng.integers(50, 4000, size=n_logs),
        "output_tokens": rng.integers(20, 1200, size=n_logs),
        "created_at": prospect_created[about] + pd.to_timedelta(
            rng.uniform(0, 3600, n_logs), unit="s"),
    })


def _column_text(column: pd.Series) -> list[str]:
    """One column as COPY text values; NULL (None/NaN) becomes ``\\N``."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column):
        return list(np.datetime_as_string(column.to_numpy(), unit="us"))
    if pd.api.types.is_numeric_dtype(column):
        return list(column.astype(str))
    return [value if isinstance(value, str) else "\\N" for value in column.tolist()]


def copy_text(frame: pd.DataFrame) -> str:
    """Rows in COPY's text format (tab-separated). The generated values hold no tab,
    newline or backslash, so no escaping is needed."""
    columns = [_column_text(frame[name]) for name in frame.columns]
    return "".join(line + "\n" for line in map("\t".join, zip(*columns, strict=True)))


def _copy_frame(conn: psycopg.Connection, schema: str, table: str, frame: pd.DataFrame) -> None:
    from psycopg import sql

    statement = sql.SQL("COPY {}.{} ({}) FROM STDIN").format(
        sql.Identifier(schema), sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(column) for column in frame.columns),
    )
    with conn.cursor().copy(statement) as copy:
        for start in range(0, len(frame), CHUNK_ROWS):
            copy.write(copy_text(frame.iloc[start:start + CHUNK_ROWS]))


def _skip_row_triggers(conn: psycopg.Connection) -> bool:
    """Skip foreign-key checks and triggers for this transaction, where allowed.

    The generated rows are consistent by construction, so the per-row foreign-key checks
    (most of COPY's cost) prove nothing. Needs a role allowed to set
    session_replication_role (superuser; Supabase's postgres role); else checks stay on.
    """
    import psycopg

    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
        return True
    except psycopg.errors.InsufficientPrivilege:
        return False


def seed_database(conn: psycopg.Connection, schema: str, scale: int, *, replace: bool = False,
                  seed: int = 42) -> SeedResult:
    """Fill the four tables with ``scale`` prospects and the rows that go with them.

    ``conn`` must be in autocommit mode. Refuses (:class:`DatabaseError`) when the tables
    already hold rows, unless ``replace`` is set, which empties them first.
    """
    from psycopg import sql

    if scale < 1:
        raise ValueError("scale must be at least 1")
    if not conn.autocommit:
        raise ValueError("seed_database needs an autocommit connection")
    names = sql.SQL(", ").join(
        sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table)) for table in TABLES
    )
    has_rows = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {}.{})").format(
            sql.Identifier(schema), sql.Identifier("prospects"))
    ).fetchone()
    if has_rows and has_rows[0] and not replace:
        raise DatabaseError(
            "the tables already hold data; pass --replace to empty them and seed again"
        )
    result = SeedResult()
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        result.skipped_row_triggers = _skip_row_triggers(conn)
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))
        for table, frame in _frames(scale, seed):
            _copy_frame(conn, schema, table, frame)
            result.rows[table] = len(frame)
            now = time.perf_counter()
            result.seconds[table] = now - started
            started = now
    for table in TABLES:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)))
    result.seconds["vacuum_analyze"] = time.perf_counter() - started
    return result


