"""Pololu Tic stepper controller: a codec with no I/O (`codec`), USB and TTL serial transports,
an async driver (`driver`). The package imports nothing, so the simulator can import the codec
without the host's driver."""
