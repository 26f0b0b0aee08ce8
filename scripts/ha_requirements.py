"""Print the Python requirements of Home Assistant components and their dependencies.

Home Assistant installs an integration's requirements when it loads it; offline
(or in tests, which never install) they must be there beforehand. This walks
the manifests of the installed Home Assistant from the given components
through their dependencies and prints the requirements, which pip then installs
under Home Assistant's own package_constraints.txt.

Usage: python scripts/ha_requirements.py DOMAIN [DOMAIN ...]
"""

from __future__ import annotations

import json
from pathlib import Path
import sys

import homeassistant

COMPONENTS = Path(homeassistant.__file__).parent / "components"
PROJECT = Path(__file__).resolve().parents[1]


def manifest(domain: str) -> dict[str, object]:
    """Return a component's manifest, core or custom."""
    for path in (
        COMPONENTS / domain / "manifest.json",
        PROJECT / "custom_components" / domain / "manifest.json",
    ):
        if path.exists():
            return dict(json.loads(path.read_text()))
    raise SystemExit(f"unknown component: {domain}")


def requirements(roots: list[str]) -> list[str]:
    """Walk dependencies and after_dependencies from `roots`."""
    seen: set[str] = set()
    found: set[str] = set()
    todo = list(roots)
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        data = manifest(domain)
        found.update(str(r) for r in data.get("requirements", []))  # type: ignore[attr-defined]
        for key in ("dependencies", "after_dependencies"):
            todo.extend(str(d) for d in data.get(key, []))  # type: ignore[attr-defined]
    return sorted(found)


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
