"""The transducer's calibration, kept on the board's flash as `/calibration.py` (docs/firmware.md,
bring-up, "Calibrate the transducer").

`rig firmware calibrate` measures it and writes the file (`text`); at every boot `main()` reads
it (`load`) and gives the two numbers to the HAL. Flashing the firmware leaves the file alone.
A file that is missing, does not import, or holds numbers outside the bounds below is no
calibration: the board then reports its transducer at the rail (a sensor fault), never a
pressure on a scale nobody measured.

The scale (firmware/hal_rp2040.py): centi-mmHg = ((code - ZERO_CODE) >> 4) * GAIN_Q12 >> 12.
The bounds come from the transducer's bridge sensitivity, 5 uV/V/mmHg nominal (the disposable
blood-pressure transducer of the rig's design), through the ADS1220 at gain 128 with the bridge
excitation as its reference: 5e-6 * 128 * 2^23 = 5368.7 codes per mmHg, GAIN_Q12 = 1220.7.
"""

FILE = "/calibration.py"
MODULE = "calibration"
"""The file on the flash and the name it is imported by (the flash's root is on sys.path)."""
GAIN_Q12_MIN = 1110
"""A bridge of 5.5 uV/V/mmHg (nominal + 10 %): 6553600 / (5.5e-6 * 128 * 2^23) = 1109.7."""
GAIN_Q12_MAX = 1356
"""A bridge of 4.5 uV/V/mmHg (nominal - 10 %): 1356.3. A gain outside 1110..1356 is a wrong
reference, a reference not applied, a wrong part or wiring, not a transducer's tolerance (1 %).
With it and ZERO_CODE_LIMIT the scale's product stays below 2^30 for any 24-bit code: a small
integer on the RP2040, no allocation on the sample path."""
ZERO_CODE_LIMIT = 177167
"""30 mmHg at the highest sensitivity allowed (5905.6 codes per mmHg): the zero offset the
board's ZERO_PRESSURE also refuses beyond (board.ZERO_LIMIT_CMMHG)."""


def valid(zero_code: object, gain_q12: object) -> bool:
    """Two integers (not bools, not floats) within the bounds."""
    if type(zero_code) is not int or type(gain_q12) is not int:
        return False
    return -ZERO_CODE_LIMIT <= zero_code <= ZERO_CODE_LIMIT and (
        GAIN_Q12_MIN <= gain_q12 <= GAIN_Q12_MAX
    )


def load(module: str = MODULE) -> tuple[int, int] | None:
    """(ZERO_CODE, GAIN_Q12) from the calibration file, or None if there is no valid one."""
    try:
        cal = __import__(module)
        zero_code = cal.ZERO_CODE
        gain_q12 = cal.GAIN_Q12
    except Exception:  # missing (ImportError), malformed (SyntaxError, NameError ...), incomplete
        return None
    if not valid(zero_code, gain_q12):
        return None
    return (zero_code, gain_q12)


def text(
    zero_code: int, gain_q12: int, reference_mmhg: float, reference_code: int, written: str
) -> str:
    """The file's content: the two numbers `load` reads, and what they were measured against."""
    return (
        "# The transducer's calibration, written by `rig firmware calibrate` (docs/firmware.md).\n"
        f"ZERO_CODE = {zero_code}\n"
        f"GAIN_Q12 = {gain_q12}\n"
        "REFERENCE_MMHG = " + repr(reference_mmhg) + "\n"
        f"REFERENCE_CODE = {reference_code}\n"
        "WRITTEN = " + repr(written) + "\n"
    )
