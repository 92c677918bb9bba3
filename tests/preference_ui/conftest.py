"""Fixtures for the annotation store and app tests."""

from __future__ import annotations

import os

import pytest
from pui_helpers import free_port, new_store, wait_for_http

from preference_ui.store import Store


@pytest.fixture
def store(tmp_path) -> Store:
    """A fresh store with alice (admin) and bob, no items."""
    return new_store(tmp_path / "annotations.sqlite")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The app launched in this process on a free port: yields (url, store)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from preference_ui.app import launch

    store = new_store(tmp_path_factory.mktemp("live") / "annotations.sqlite", users=("alice", "bob", "carol"),
                      max_edit_chars=1000)
    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    wait_for_http(url)
    yield url, store
    demo.close()


@pytest.fixture
def serve():
    """Launch the app in this process on a free port: ``serve(store, **launch_kwargs)`` -> url; closed after the test."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from preference_ui.app import launch

    demos = []

    def start(store: Store, **kwargs) -> str:
        port = free_port()
        demos.append(launch(store, port=port, prevent_thread_lock=True, quiet=True, **kwargs))
        url = f"http://127.0.0.1:{port}/"
        wait_for_http(url)
        return url

    yield start
    for demo in demos:
        demo.close()
