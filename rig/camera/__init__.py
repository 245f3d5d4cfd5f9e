"""The camera pipeline: the fibre's field, honeycomb removal, recording and snapshots.

Pure pieces with no asyncio: the camera's own process (issue 8) wires them. docs/camera.md.
"""
