"""The procedure's report and archive, read from the journal after the fact (docs/record.md).

A client of the journal file, never part of the daemon: it plots with matplotlib, which the
layering contract keeps out of the daemon's import graph.
"""
