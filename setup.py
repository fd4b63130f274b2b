"""Package layout: the card's top-level folders become subpackages of one ``powerbus``.

``bus/`` is imported as ``powerbus.bus``, ``nodes/`` as ``powerbus.nodes``, and so on; the
generated protobuf/gRPC code (``build/generated/powerbus``, made by ``make``, never
committed) supplies ``powerbus.<domain>.v1``. All metadata lives in pyproject.toml.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

ROOT = Path(__file__).parent
FOLDERS = ("bus", "nodes", "load_balancer", "monitoring", "adapters")
GENERATED = "build/generated/powerbus"

package_dir = {"powerbus": GENERATED} | {f"powerbus.{f}": f for f in FOLDERS}
packages = ["powerbus"] + [f"powerbus.{p}" for p in find_namespace_packages(GENERATED)]
for folder in FOLDERS:
    packages.append(f"powerbus.{folder}")
    packages += [f"powerbus.{folder}.{p}" for p in find_namespace_packages(folder)]
packages = [p for p in packages if "__pycache__" not in p]

setup(
    package_dir=package_dir,
    packages=packages,
    package_data={"": ["py.typed", "*.pyi", "*.ini", "*.mako", "static/*", "static/**/*"]},
)
