"""fastdeit: the DeiT recipe, fast. See DESIGN.md for the data flow and invariants."""

__version__ = "0.1.0"
