"""orch.yaml: its validated model, one resolved run, the allow-list and production guard."""
