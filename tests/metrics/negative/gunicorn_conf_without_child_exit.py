"""NEGATIVE CONTROL, never shipped: the kit's gunicorn config without its `child_exit` hook, so a
dead worker's open streams stay in `streamkit_active_streams` (livesum) for ever.
tests/metrics/test_mix.py::test_negative_control_without_child_exit_a_dead_worker_stays_counted
must catch it."""

from __future__ import annotations

from app.gunicorn_conf import *  # noqa: F403

del child_exit  # noqa: F821
