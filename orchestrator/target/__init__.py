"""The system under test: the embedded sandbox, endpoint verification, test users and
environment readiness."""
