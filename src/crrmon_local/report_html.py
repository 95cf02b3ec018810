"""The demo's report as one self-contained HTML file."""

import html
import json


def render_html(report: dict) -> str:
    return f"<!doctype html><pre>{html.escape(json.dumps(report, default=str, indent=1))}</pre>"
