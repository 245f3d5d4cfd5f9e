"""USB HID foot pedals: report codecs (`reports`), the pedal logic (`tracker`: debounce, taps,
stuck pedals) and the async driver (`driver`). The package imports nothing, so the simulator can
import the codec without the host's driver."""
