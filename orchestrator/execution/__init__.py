"""Running k6: discovery, rendering, the run lifecycle and its runners (native, Docker,
shards, k6-operator), and `orch doctor`."""
