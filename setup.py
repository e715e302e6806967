"""Package discovery (the rest of the metadata is in pyproject.toml).

Every package under blt_model/ and blt_chat/ is found automatically; the repository's assets/
folder (the shipped model) is installed as the package `blt_assets`."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["blt_model", "blt_model.*", "blt_chat", "blt_chat.*"]) + ["blt_assets"],
    package_dir={"blt_assets": "assets"},
)
