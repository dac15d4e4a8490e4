"""Declares the packages (fastdeit; the top-level kernels/ folder as fastdeit.kernels; the presets of
configs/ as package data of fastdeit.configs, so that an installed wheel has them) and
builds the optional C extension fastdeit.kernels._jpeg_region (region JPEG decoding with the
system's libjpeg-turbo, e.g. apt's libjpeg-dev); everything else is in pyproject.toml.

optional=True: without a compiler or the libjpeg headers the install still succeeds and the CPU
decoder falls back to whole-image decoding with simplejpeg (see fastdeit.data.cpu_decoder).
"""

from setuptools import Extension, find_packages, setup

# kernels/ is a top-level folder (see DESIGN.md's layout) installed as the package fastdeit.kernels.
KERNEL_PACKAGES = ["fastdeit.kernels"] + [f"fastdeit.kernels.{name}" for name in find_packages("kernels")]
# configs/ (the presets, TOML) ships inside the package as fastdeit/configs/*.toml
PRESET_PACKAGE = "fastdeit.configs"

setup(
    packages=find_packages(include=["fastdeit", "fastdeit.*"]) + KERNEL_PACKAGES + [PRESET_PACKAGE],
    package_dir={"fastdeit.kernels": "kernels", PRESET_PACKAGE: "configs"},
    package_data={PRESET_PACKAGE: ["*.toml"]},
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
