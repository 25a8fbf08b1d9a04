"""Lower bounds for the seconds C code reads from the clock.

glibc's time() (and munged's, through it) reads the kernel's coarse realtime clock, which is advanced
once per timer tick. In the few milliseconds after a second begins it can still report the previous
second while time.time(), a precise clock_gettime, already reports the new one, so a test that reads
time.time() first and then lets C read time() may see C's value one second lower.
"""
import time


def c_time_floor() -> int:
    """The smallest value a time() call made after this one can return."""
    return int(time.time()) - 1
