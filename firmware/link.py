"""The board's end of the sequence numbers (docs/protocols/ioboard.md section 3.1).

Host frames are accepted strictly in sequence; every board frame carries `expected_seq`, which is
the acknowledgement.
"""

from firmware.framing import SEQ_MODULO


class DeviceLink:
    def __init__(self) -> None:
        self.expected_seq = 0
        self.frames_rx = 0
        self.frames_out_of_sequence = 0

    def accept(self, seq: int, payload_len: int) -> bool:
        """True: run the frame's messages. False: a probe (empty) or a frame out of sequence
        (a retransmission, or after a lost frame), discarded: answer with a pure ack."""
        self.frames_rx += 1
        if not payload_len:
            return False
        if seq != self.expected_seq:
            self.frames_out_of_sequence += 1
            return False
        self.expected_seq = (self.expected_seq + 1) % SEQ_MODULO
        return True
