"""Simulated USB: a pyusb backend hosting emulated devices, and the emulators behind it."""
