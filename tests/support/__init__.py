"""Test helpers: a fake Gemini server so tests and benchmarks never need a real API key."""
