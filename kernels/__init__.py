"""fastdeit's hand-written kernels (Triton, numba, C), importable as `fastdeit.kernels`.

This folder sits at the top of the repository, apart from the package, and is mapped into it by
setup.py's `package_dir`. Each kernel lives beside the plain reference (torch or PIL) it is tested
against, and stays only where a benchmark shows it beats that reference.
"""
