"""The `.beton` dataset format (FFCV 1.0.2 layout): a writer and a memory-mapped reader."""

from fastdeit.data.beton.reader import BetonReader
from fastdeit.data.beton.writer import BetonWriter

__all__ = ["BetonReader", "BetonWriter"]
