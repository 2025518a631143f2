"""Workflow definitions, the engine that moves a ticket, dispatch, SLA and escalation."""
