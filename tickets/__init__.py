"""Ticket templates, custom fields, tickets, their timeline and intake channels."""
