"""The 12348 video hotline: call flow, distributor runtime, agent and supervisor operations."""
