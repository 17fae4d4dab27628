"""The database side of orch: which database a command uses, index verification and
planning, migrations, EXPLAIN and seeding.

Every module here takes plain arguments (a connection URL or a psycopg connection, a
:class:`~orchestrator.config.DatabaseSettings`, paths), returns data and prints nothing;
``orchestrator.cli.db`` does the printing. psycopg (and pandas, for seeding) is imported
inside the functions that need it so that importing this package stays cheap.
"""

from __future__ import annotations

from orchestrator.db.connection import check_tables, connect, describe_target, with_database
from orchestrator.db.embedded import ensure_local_database, start_embedded_server
from orchestrator.db.explain import compare_with_indexes, explain_queries, pick_parameters
from orchestrator.db.indexes import Status, relation_names, verify_indexes
from orchestrator.db.migrations import (
    applied_versions,
    apply_migrations,
    history_table,
    pending_migrations,
)
from orchestrator.db.plan import plan_indexes, write_plan
from orchestrator.db.sampling import DatabaseSampler, database_watch
from orchestrator.db.seed import TABLES, seed_database
from orchestrator.db.target import Target, resolve_target, translate_db_errors

__all__ = [
    "TABLES",
    "DatabaseSampler",
    "Status",
    "Target",
    "applied_versions",
    "apply_migrations",
    "check_tables",
    "compare_with_indexes",
    "connect",
    "database_watch",
    "describe_target",
    "ensure_local_database",
    "explain_queries",
    "history_table",
    "pending_migrations",
    "pick_parameters",
    "plan_indexes",
    "relation_names",
    "resolve_target",
    "seed_database",
    "start_embedded_server",
    "translate_db_errors",
    "verify_indexes",
    "with_database",
    "write_plan",
]
