"""Tooling shared by the scripts and the tests: speech servers, test speech, the demo home."""
