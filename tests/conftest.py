"""Shared pytest set-up for every suite.

Deliberately free of Django: the engine's tests (tests/engine) must run, and pass, even
where the web app's settings cannot load. Django is configured by tests/builder/conftest.py,
which pytest only imports when it collects the web app's tests.
"""
