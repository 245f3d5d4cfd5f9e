"""The rig's safety case, apart from the runtime: hazards, their controls, and the evidence.

`hazards` is the hazard registry (ISO 14971); `report` joins it with the tests that verify each
control (`rig safety report`, which runs pytest in a subprocess) and renders docs/safety/hazards.md
(`rig safety docs`). Nothing in the daemon's import graph may import this package (the layering
contract, .importlinter): the registry names the runtime's code, never the other way round.
"""
