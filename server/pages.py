"""Placeholder: filled in by its own change."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pages", __name__)
