"""Tests for Local Voice."""
