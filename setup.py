"""Declares the packages (fastdeit, and the top-level kernels/ folder as fastdeit.kernels) and
builds the optional C extension fastdeit.kernels._jpeg_region (region JPEG decoding with the
system's libjpeg-turbo, e.g. apt's libjpeg-dev); everything else is in pyproject.toml.

optional=True: without a compiler or the libjpeg headers the install still succeeds and the CPU
decoder falls back to whole-image decoding with simplejpeg (see fastdeit.data.cpu_decoder).
"""

from setuptools import Extension, find_packages, setup

# kernels/ is a top-level folder (see DESIGN.md's layout) installed as the package fastdeit.kernels.
KERNEL_PACKAGES = ["fastdeit.kernels"] + [f"fastdeit.kernels.{name}" for name in find_packages("kernels")]

setup(
    packages=find_packages(include=["fastdeit", "fastdeit.*"]) + KERNEL_PACKAGES,
    package_dir={"fastdeit.kernels": "kernels"},
    ext_modules=[
        Extension(
            "fastdeit.kernels._jpeg_region",
            sources=["kernels/_jpeg_region.c"],
            libraries=["jpeg"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
