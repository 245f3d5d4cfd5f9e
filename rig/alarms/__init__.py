"""Alarm conditions by IEC 60601-1-8 priority, derived from the journal's events (docs/alarms.md)."""
