"""Write translations/en.json from strings.json, resolving [%key:...%] references.

strings.json holds each text once; a text used again refers to it as
[%key:config::step::assistant::title%], as in Home Assistant core. Home
Assistant reads translations/<language>.json at run time and does not resolve
references, so en.json is strings.json with every reference replaced.

    python -m scripts.translations          write en.json
    python -m scripts.translations --check  exit 1 when en.json is out of date
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import sys
from typing import Any

INTEGRATION = Path(__file__).resolve().parents[1] / "custom_components" / "local_voice"
STRINGS = INTEGRATION / "strings.json"
ENGLISH = INTEGRATION / "translations" / "en.json"

_REFERENCE = re.compile(r"\[%key:([a-z0-9_:]+)%\]")


def resolve(strings: dict[str, Any]) -> dict[str, Any]:
    """Return the strings with every reference replaced by the text it names."""

    def lookup(path: str) -> str:
        node: Any = strings
        for part in path.split("::"):
            node = node[part]
        if not isinstance(node, str) or _REFERENCE.search(node):
            raise ValueError(f"{path} does not name a text")
        return node

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return _REFERENCE.sub(lambda match: lookup(match.group(1)), node)

    resolved: dict[str, Any] = walk(strings)
    return resolved


def english() -> str:
    """Return the text en.json should have."""
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    return json.dumps(resolve(strings), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write or check en.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    wanted = english()
    if args.check:
        if ENGLISH.read_text(encoding="utf-8") != wanted:
            print(f"{ENGLISH} is out of date: run python -m scripts.translations")
            return 1
        return 0
    ENGLISH.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
