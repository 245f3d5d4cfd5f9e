"""The rig's devices: one module per device, each owning its profile section."""
