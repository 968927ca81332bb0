"""The dossier report: one self-contained HTML file (and the same content as JSON) that shows
a person what a bundle holds, what the machine was unsure of, and what a reviewer decided.

``build_report`` gives the content (``DossierReport``); ``render_report_html`` the page.
"""

from digitize.report.build import DossierReport, build_report
from digitize.report.html import render_report_html

__all__ = ["DossierReport", "build_report", "render_report_html"]
