"""The daemon's typed events and the journal that keeps them (models.py, journal.py)."""
