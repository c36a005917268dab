"""qbench's version (the same as pyproject.toml's): its own module, at the bottom of the layers, so
the environment record of every run (env.py) reads it without importing the package root."""

__version__ = "0.1.0"
