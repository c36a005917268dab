"""Test doubles for the devices qbench drives: loopback daemons (ADB, SSH) that stand in for real hardware."""
