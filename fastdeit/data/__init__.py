"""Data: dataset formats, the view plan, samplers and loaders."""
