"""Psychometrics test fixtures."""
