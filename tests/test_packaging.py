"""What HACS and Home Assistant's Marketplace read: hacs.json and the manifest.

Both install from the repository as it is (no release archive): the one
folder under custom_components/, with a manifest that HACS accepts.
"""

from __future__ import annotations

import json
import tomllib

from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as ha_version

from scripts.servers.launch import PROJECT

# The keys hacs.json may have, and their types.
HACS_KEYS = {
    "name": str,
    "content_in_root": bool,
    "zip_release": bool,
    "filename": str,
    "hide_default_branch": bool,
    "country": (str, list),
    "homeassistant": str,
    "hacs": str,
    "persistent_directory": str,
}


def test_hacs_json_is_valid() -> None:
    """Only known keys of the right types; a version this suite's HA satisfies."""
    hacs = json.loads((PROJECT / "hacs.json").read_text())
    assert isinstance(hacs.get("name"), str)
    assert hacs["name"].strip()
    for key, value in hacs.items():
        assert key in HACS_KEYS, f"hacs.json: unknown key {key!r}"
        assert isinstance(value, HACS_KEYS[key]), key
    assert ("filename" in hacs) == bool(hacs.get("zip_release"))
    assert not hacs.get("content_in_root")
    minimum = AwesomeVersion(hacs["homeassistant"])
    assert minimum.valid
    assert AwesomeVersion(ha_version) >= minimum


def test_one_integration_with_a_full_manifest() -> None:
    """HACS installs custom_components/<domain>/, whose manifest names it."""
    folders = [
        p for p in (PROJECT / "custom_components").iterdir()
        if p.is_dir() and not p.name.startswith((".", "__"))
    ]  # fmt: skip
    assert [p.name for p in folders] == ["local_voice"]
    manifest = json.loads((folders[0] / "manifest.json").read_text())
    assert manifest["domain"] == "local_voice"
    for key in ("name", "documentation", "issue_tracker", "codeowners", "version"):
        assert manifest.get(key), f"manifest.json lacks {key}"
    assert AwesomeVersion(manifest["version"]).valid
    hacs = json.loads((PROJECT / "hacs.json").read_text())
    assert hacs["name"] == manifest["name"]


def test_licence_matches_pyproject() -> None:
    """HACS refuses a repository without a licence; it must be the one declared."""
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == "Apache-2.0"
    text = (PROJECT / "LICENSE").read_text()
    assert "Apache License" in text.splitlines()[0]
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
