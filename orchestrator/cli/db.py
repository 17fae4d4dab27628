"""`orch db`: verify indexes, plan the missing ones, migrate, EXPLAIN, seed.

The library lives in ``orchestrator.db``; this module resolves the target database from
the options and orch.yaml, calls one function, and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli.options import F, config_option

if TYPE_CHECKING:
    # lazy: keeps --help fast
    from orchestrator.db import Target


def target_options(func: F) -> F:
    """--config, --env, --database-url and --migrations-dir."""
    func = click.option(
        "--migrations-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Migrations folder (default: database.migrations_dir, supabase/migrations).",
    )(func)
    func = click.option(
        "--database-url", envvar="DATABASE_URL", default=None, show_envvar=True,
        help="Connection URL; overrides the environment's database_url.",
    )(func)
    func = click.option(
        "--env", "env_name", default=None,
        help="Environment from the config (default: local, the embedded PostgreSQL).",
    )(func)
    return config_option(func)


def _header(target: Target) -> None:
    from orchestrator.db import describe_target  # lazy: keeps --help fast

    where = "embedded PostgreSQL" if target.embedded else describe_target(target.url)
    click.echo(f"Database: {where} (environment {target.env_name})")


@click.group("db")
def db_group() -> None:
    """Verify and create database indexes, apply migrations, EXPLAIN, seed.

    Example:

        orch db indexes             # what exists, what is missing

        orch db plan && orch db migrate
    """


@db_group.command("indexes")
@target_options
def indexes_command(config_file: str | None, env_name: str | None, database_url: str | None,
                    migrations_dir: Path | None) -> None:
    """List the indexes on the tables in scope and check the desired ones.

    Each desired index (database.desired_indexes) is matched by definition, not by name:
    present, covered (by a composite index that starts with its columns) or missing.
    Redundant indexes (duplicates, prefixes of a composite) are listed too.

    Example:

        orch db indexes --env staging
    """
    # lazy: keeps --help fast
    from orchestrator.db import Status, connect, resolve_target, translate_db_errors, verify_indexes

    target = resolve_target(config_file, env_name, database_url, migrations_dir)
    _header(target)
    with connect(target.url) as conn, translate_db_errors():
        report = verify_indexes(conn, target.settings)
    click.echo(f"\nExisting indexes in schema {report.schema}:")
    for table in target.settings.tables:
        click.echo(f"  {table}")
        for index in (i for i in report.existing if i.table == table):
            where = f" WHERE {index.predicate}" if index.predicate else ""
            columns = ", ".join(index.columns)
            click.echo(f"    {index.name:40s} ({columns}){where}  [{index.kind()}]")
    click.echo("\nDesired indexes (matched by definition):")
    for status in report.statuses:
        line = f"  {status.status.value:8s} {status.desired.describe():42s}"
        if status.status is Status.PRESENT:
            line += f" as {status.by}"
        elif status.status is Status.COVERED:
            line += f" by {status.by}"
        else:
            line += f" wanted as {status.desired.name}"
            if status.note:
                line += f" ({status.note})"
        click.echo(line)
    if report.redundant:
        click.echo("\nRedundant indexes (consider dropping; nothing is dropped for you):")
        for item in report.redundant:
            relation = "a duplicate of" if item.reason == "duplicate" else "a prefix of"
            click.echo(f"  {item.index} on {item.table} is {relation} {item.because_of}")
    invalid = [index.name for index in report.existing if not index.valid]
    if invalid:
        click.echo("\nINVALID indexes (failed concurrent builds; drop them): " + ", ".join(invalid))
    counts = {kind: sum(1 for s in report.statuses if s.status is kind) for kind in Status}
    click.echo(
        f"\n{counts[Status.PRESENT]} present, {counts[Status.COVERED]} covered, "
        f"{counts[Status.MISSING]} missing."
        + (" Run `orch db plan` to write the missing ones as a migration."
           if counts[Status.MISSING] else "")
    )


@db_group.command("plan")
@target_options
@click.option("--concurrently", is_flag=True,
              help="CREATE INDEX CONCURRENTLY in a non-transactional file (only `orch db migrate` "
                   "can apply it).")
def plan_command(config_file: str | None, env_name: str | None, database_url: str | None,
                 migrations_dir: Path | None, concurrently: bool) -> None:
    """Write the missing indexes, and only those, as a new migration file.

    The file is <migrations dir>/<UTC timestamp>_add_performance_indexes.sql with one
    commented CREATE INDEX IF NOT EXISTS per missing index. Nothing missing, or already
    planned in a pending migration: no file.

    Example:

        orch db plan && orch db migrate
    """
    # lazy: keeps --help fast
    from orchestrator.db import (
        applied_versions,
        connect,
        describe_target,
        relation_names,
        resolve_target,
        translate_db_errors,
        verify_indexes,
        write_plan,
    )

    target = resolve_target(config_file, env_name, database_url, migrations_dir)
    _header(target)
    with connect(target.url) as conn, translate_db_errors():
        report = verify_indexes(conn, target.settings)
        applied = applied_versions(conn)
        taken = relation_names(conn, target.settings.schema_name)
    result = write_plan(report, target.migrations_dir, applied=applied, taken_names=taken,
                        target=describe_target(target.url), concurrently=concurrently)
    if result.nothing_missing:
        click.echo("No desired index is missing; no migration written.")
        return
    for desired, path in result.already_planned:
        click.echo(f"Already planned, not yet applied: {desired.describe()} in {path.name}")
    if result.path is None:
        click.echo("Nothing new to plan; run `orch db migrate` to apply the pending migration.")
        return
    click.echo(f"Wrote {result.path} with {len(result.planned)} index(es):")
    for item in result.planned:
        click.echo(f"  {item.name} on {item.desired.describe()}")
    click.echo("Review it, then apply it with `orch db migrate` (or `supabase db push`).")


@db_group.command("migrate")
@target_options
def migrate_command(config_file: str | None, env_name: str | None, database_url: str | None,
                    migrations_dir: Path | None) -> None:
    """Apply the pending migrations in order and record them.

    History goes to supabase_migrations.schema_migrations when the database has it, else to
    orch_migrations.applied.

    Example:

        orch db migrate --env staging
    """
    # lazy: keeps --help fast
    from orchestrator.db import (
        apply_migrations,
        connect,
        history_table,
        resolve_target,
        translate_db_errors,
    )

    target = resolve_target(config_file, env_name, database_url, migrations_dir)
    _header(target)
    with connect(target.url, autocommit=True) as conn, translate_db_errors():
        applied = apply_migrations(conn, target.migrations_dir)
        history = ".".join(history_table(conn))
    if not applied:
        click.echo(f"Nothing to apply: every migration in {target.migrations_dir} is recorded "
                   f"in {history}.")
        return
    for migration in applied:
        mode = "" if migration.transactional else " (outside a transaction)"
        click.echo(f"Applied {migration.path.name}{mode}")
    click.echo(f"Recorded {len(applied)} migration(s) in {history}.")


@db_group.command("explain")
@target_options
@click.option("--compare", is_flag=True,
              help="Also measure with the planned (missing) indexes, on a scratch copy.")
@click.option("--repeat", type=click.IntRange(1, 50), default=3, show_default=True,
              help="Measured runs per query (after one warm-up); the median is shown.")
def explain_command(config_file: str | None, env_name: str | None, database_url: str | None,
                    migrations_dir: Path | None, compare: bool, repeat: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) the product's representative queries.

    Prints each query's execution time and plan shape (sequential vs index scans). With
    --compare, builds the missing indexes on a scratch copy of the database, measures again,
    and prints the speed-up; the database itself is not changed.

    Example:

        orch db seed --scale 1000000 && orch db explain --compare
    """
    # lazy: keeps --help fast
    from orchestrator.db import (
        compare_with_indexes,
        connect,
        explain_queries,
        pick_parameters,
        plan_indexes,
        relation_names,
        resolve_target,
        translate_db_errors,
        verify_indexes,
    )

    target = resolve_target(config_file, env_name, database_url, migrations_dir)
    _header(target)
    schema = target.settings.schema_name
    with connect(target.url) as conn, translate_db_errors():
        report = verify_indexes(conn, target.settings)
        taken = relation_names(conn, schema)
        if not compare:
            plans = explain_queries(conn, schema, pick_parameters(conn, schema), repeat=repeat)
    if not compare:
        click.echo(f"\n{'query':22s} {'time (ms)':>10s}  plan")
        for plan in plans:
            click.echo(f"{plan.name:22s} {plan.execution_ms:10.2f}  {plan.shape}")
        return
    planned = plan_indexes(schema, report.missing, taken)
    if not planned:
        click.echo("No desired index is missing, so there is nothing to compare.")
        return
    with translate_db_errors():
        result = compare_with_indexes(target.url, schema, target.settings.tables,
                                      [item.statement for item in planned], repeat=repeat)
    click.echo(f"\nMeasured on a {result.mode} with {len(planned)} planned index(es) "
               f"(built and analysed in {result.build_ms:.0f} ms).")
    click.echo(f"\n{'query':22s} {'before ms':>10s} {'after ms':>10s} {'speed-up':>9s}  "
               "plan change")
    for item in result.comparisons:
        change = (f"{item.before.shape}  ->  {item.after.shape}"
                  if item.before.scans != item.after.scans else f"unchanged: {item.after.shape}")
        click.echo(f"{item.before.name:22s} {item.before.execution_ms:10.2f} "
                   f"{item.after.execution_ms:10.2f} {item.speedup:8.1f}x  {change}")
    moved = [item.before.name for item in result.comparisons if item.seq_to_index]
    click.echo("\nFrom sequential to index scans: " + (", ".join(moved) if moved else "none"))


@db_group.command("seed")
@target_options
@click.option("--scale", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Number of prospects; the other tables follow in proportion.")
@click.option("--replace", is_flag=True, help="Empty the tables first if they hold data.")
@click.option("--seed", "random_seed", type=int, default=42, show_default=True,
              help="Random seed (the same seed gives the same data).")
def seed_command(config_file: str | None, env_name: str | None, database_url: str | None,
                 migrations_dir: Path | None, scale: int, replace: bool, random_seed: int) -> None:
    """Fill the tables with realistic synthetic data, loaded with COPY.

    Per-user volumes are skewed, statuses follow a funnel and times spread over a year.

    Example:

        orch db seed --scale 1000000 --replace
    """
    # lazy: keeps --help fast
    from orchestrator.db import (
        TABLES,
        check_tables,
        connect,
        resolve_target,
        seed_database,
        translate_db_errors,
    )

    target = resolve_target(config_file, env_name, database_url, migrations_dir)
    _header(target)
    with connect(target.url, autocommit=True) as conn, translate_db_errors():
        check_tables(conn, target.settings.schema_name, TABLES)
        result = seed_database(conn, target.settings.schema_name, scale, replace=replace,
                               seed=random_seed)
    for table, rows in result.rows.items():
        click.echo(f"  {table:22s} {rows:>10,d} rows  {result.seconds[table]:6.1f} s")
    click.echo(f"Seeded in {result.total_seconds:.1f} s (including VACUUM ANALYZE).")


COMMANDS: list[click.Command] = [db_group]
