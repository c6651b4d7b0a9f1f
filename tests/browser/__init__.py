"""Browser tests: the web console in headless Chromium (see harness.py, conftest.py)."""
