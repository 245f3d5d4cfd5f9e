"""The procedure record, daemon side: procedures, trends and the record's storage (docs/record.md).

Reports and export read the journal afterwards, outside the daemon (rig/report/).
"""
