"""Configuration of the database side: which tables are in scope and which indexes we want.

Embedded in ``orch.yaml`` under the top-level ``database:`` key. The defaults are the
story's index list (Story 6.3, Task 6, sections 5.1 and 5.2 of the change proposal).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class DesiredIndex(BaseModel):
    """An index the product needs: a table, its key columns in order, a name, and why."""

    model_config = ConfigDict(extra="forbid")

    table: str
    columns: list[str] = Field(min_length=1)
    name: str
    reason: str

    @field_validator("table", "name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("columns")
    @classmethod
    def _columns_not_blank(cls, value: list[str]) -> list[str]:
        if any(not column.strip() for column in value):
            raise ValueError("column names must not be empty")
        if len(set(value)) != len(value):
            raise ValueError("a column appears twice")
        return value

    def describe(self) -> str:
        """``table(col1, col2)``, as shown in reports."""
        return f"{self.table}({', '.join(self.columns)})"


def _idx(table: str, columns: list[str], name: str, reason: str) -> DesiredIndex:
    return DesiredIndex(table=table, columns=columns, name=name, reason=reason)


DEFAULT_TABLES: list[str] = ["prospects", "campaigns", "meetings", "ai_conversation_log"]

DEFAULT_DESIRED_INDEXES: list[DesiredIndex] = [
    _idx("prospects", ["user_id"], "idx_prospects_user_id",
         "every prospect list is scoped to the signed-in user (RLS: user_id = auth.uid())"),
    _idx("prospects", ["status"], "idx_prospects_status",
         "pipeline counts and filters by prospect status"),
    _idx("prospects", ["created_at"], "idx_prospects_created_at",
         "newest-first listings and 'added in the last 24 h' views"),
    _idx("prospects", ["user_id", "status"], "idx_prospects_user_status",
         "list a user's prospects by status (the dashboard's main query)"),
    _idx("campaigns", ["user_id"], "idx_campaigns_user_id",
         "a user's campaigns (RLS: user_id = auth.uid())"),
    _idx("campaigns", ["status"], "idx_campaigns_status",
         "active/paused campaign filters and the campaign scheduler"),
    _idx("campaigns", ["created_at"], "idx_campaigns_created_at",
         "recent campaigns, newest first"),
    _idx("meetings", ["user_id"], "idx_meetings_user_id",
         "a user's meetings (RLS: user_id = auth.uid())"),
    _idx("meetings", ["status"], "idx_meetings_status",
         "meeting status filters (scheduled, completed, no-show)"),
    _idx("meetings", ["scheduled_at"], "idx_meetings_scheduled_at",
         "upcoming meetings and the reminder job's time window"),
    _idx("ai_conversation_log", ["user_id"], "idx_ai_conversation_log_user_id",
         "a user's AI usage and conversation history (RLS)"),
    _idx("ai_conversation_log", ["prospect_id"], "idx_ai_conversation_log_prospect_id",
         "a prospect's conversation log (foreign key without an index otherwise)"),
    _idx("ai_conversation_log", ["created_at"], "idx_ai_conversation_log_created_at",
         "recent conversations and log retention by age"),
]


class DatabaseSettings(BaseModel):
    """The ``database:`` section of orch.yaml."""

    model_config = ConfigDict(extra="forbid")

    schema_name: str = "public"
    tables: list[str] = Field(default_factory=lambda: list(DEFAULT_TABLES), min_length=1)
    desired_indexes: list[DesiredIndex] = Field(
        default_factory=lambda: [index.model_copy(deep=True) for index in DEFAULT_DESIRED_INDEXES]
    )
    migrations_dir: str = "supabase/migrations"
    sample_interval_s: float = Field(
        default=5.0, ge=0, le=300,
        description="seconds between samples of the database while k6 runs (0: no sampling)",
    )

    @field_validator("sample_interval_s")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if 0 < value < 0.5:
            raise ValueError("sample at most every 0.5 s (or write 0 for no sampling)")
        return value

    @model_validator(mode="after")
    def _desired_tables_in_scope(self) -> DatabaseSettings:
        names: set[str] = set()
        for position, index in enumerate(self.desired_indexes):
            if index.table not in self.tables:
                raise ValueError(
                    f"desired_indexes[{position}] ({index.name}) is on table {index.table!r}, "
                    f"which is not in database.tables {self.tables}; add it there"
                )
            if index.name in names:
                raise ValueError(
                    f"desired_indexes[{position}]: the name {index.name!r} is used twice"
                )
            names.add(index.name)
        return self
