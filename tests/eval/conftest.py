"""The trainer tests' tiny ImageFolders, shared with the analysis tests."""

from tests.train.conftest import tiny_folders  # noqa: F401 - a fixture, registered by importing it
