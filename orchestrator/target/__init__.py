"""The system under test: the embedded sandbox, endpoint verification, test users and
environment readiness (`orch env check`).

The names below are loaded from their module on first use (PEP 562): the sandbox's child
process imports only the sandbox, not the verifier, the users' stores and the database code
(0.2 s of its start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.core.lazy import lazy_names

if TYPE_CHECKING:
    from orchestrator.target.n8n import (
        WEBHOOK_EXPORT_VAR,
        WEBHOOK_PATH_VAR,
        is_webhook_scenario,
        scenario_webhook,
    )
    from orchestrator.target.readiness import Check, check_environment, required_variables
    from orchestrator.target.sandbox import (
        N8NWorkflows,
        SandboxProcess,
        TargetWatch,
        is_listening,
        serve,
        start_sandbox,
        target_for,
    )
    from orchestrator.target.users import (
        OWNED_TABLES,
        USERS_FILE,
        CredentialsFile,
        LocalAuthStore,
        SupabaseAdminStore,
        UserStore,
        cleanup_users,
        create_users,
        list_users,
        users_for_run,
    )
    from orchestrator.target.verify import (
        VerifyReport,
        save_record,
        verify_environment,
        webhook_lines,
        write_enrichment_endpoint,
        write_webhook_path,
    )

__getattr__, __dir__ = lazy_names(
    __name__,
    globals(),
    {
        "n8n": (
            "WEBHOOK_EXPORT_VAR",
            "WEBHOOK_PATH_VAR",
            "is_webhook_scenario",
            "scenario_webhook",
        ),
        "readiness": ("Check", "check_environment", "required_variables"),
        "sandbox": (
            "N8NWorkflows",
            "SandboxProcess",
            "TargetWatch",
            "is_listening",
            "serve",
            "start_sandbox",
            "target_for",
        ),
        "users": (
            "OWNED_TABLES",
            "USERS_FILE",
            "CredentialsFile",
            "LocalAuthStore",
            "SupabaseAdminStore",
            "UserStore",
            "cleanup_users",
            "create_users",
            "list_users",
            "users_for_run",
        ),
        "verify": (
            "VerifyReport",
            "save_record",
            "verify_environment",
            "webhook_lines",
            "write_enrichment_endpoint",
            "write_webhook_path",
        ),
    },
)

__all__ = [
    "OWNED_TABLES",
    "USERS_FILE",
    "WEBHOOK_EXPORT_VAR",
    "WEBHOOK_PATH_VAR",
    "Check",
    "CredentialsFile",
    "LocalAuthStore",
    "N8NWorkflows",
    "SandboxProcess",
    "SupabaseAdminStore",
    "TargetWatch",
    "UserStore",
    "VerifyReport",
    "check_environment",
    "cleanup_users",
    "create_users",
    "is_listening",
    "is_webhook_scenario",
    "list_users",
    "required_variables",
    "save_record",
    "scenario_webhook",
    "serve",
    "start_sandbox",
    "target_for",
    "users_for_run",
    "verify_environment",
    "webhook_lines",
    "write_enrichment_endpoint",
    "write_webhook_path",
]
