"""Test doubles for the devices qbench drives: loopback daemons (ADB, SSH) that stand in for real hardware.

Shipped in the package on purpose, for dry runs of a device profile or a farm configuration without
hardware (`python -m qbench.testing.adbd --help`); a run never imports them.
"""
