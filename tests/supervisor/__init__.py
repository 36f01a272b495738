"""Tests of corral.supervisor."""
