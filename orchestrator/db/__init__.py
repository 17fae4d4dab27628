"""The database side of orch: index verification, migrations, EXPLAIN and seeding.

Every module here takes plain arguments (a connection URL or a psycopg connection, a
:class:`~orchestrator.config.database.DatabaseSettings`, paths), returns data and prints
nothing; ``orchestrator.cli.db`` does the lookups and the printing. psycopg is imported
inside the functions that need it so that importing this package stays cheap.
"""
