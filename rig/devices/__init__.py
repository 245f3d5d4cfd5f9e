"""The rig's devices: one module per device, each owning its profile section.

Adding a device:
1. its driver in drivers/<name>/ (a codec with no I/O, a transport, the driver) and its emulator
   in drivers/sim/, which the simulator starts with the others (drivers/sim/rig_sim.py);
2. its section, rig/devices/<name>_config.py: a `DeviceSection` with its bounds registered,
   and one line in rig/devices/sections.py;
3. its module, rig/devices/<name>.py: a `Device` (rig/devices/contract.py) that builds the
   driver, hands its actuators and emergency stop to the interlock (`provide`) and keeps the
   link; one line in rig/devices/catalog.py;
4. the rules for what it may do, in rig/safety/rules.py.
The daemon, the launcher, the state and the telemetry find it by iterating the registry.
"""

# The profile's package first: the device sections build on its base, and its RigProfile
# gathers the device sections (rig/devices/sections.py), whichever is imported first.
import rig.config  # noqa: F401
