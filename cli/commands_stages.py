"""Commands for single stages: ingest, deskew, ocr, package, sign (filled as stages land)."""
