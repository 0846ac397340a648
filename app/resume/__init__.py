"""Resumable streams (issue 19): a per-stream log, rejoin by Last-Event-ID on any replica, a bounded
grace, an explicit stop. See docs/resume.md; the routes are in app/resume_routes.py."""
