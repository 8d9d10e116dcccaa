"""Real-time sync: a webhook listener, signature and replay checks, coalescing of bursts,
and per-person syncs through the engine's guards for the operation kinds the mode allows."""
