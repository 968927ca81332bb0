"""A person's review of a signed bundle: confirm or correct what the machine was unsure of,
decide on pages, and re-sign the manifest (TT 01/2023 Art 8–9: the digitiser answers for the
copy and the extracted data; R36: values a person enters are recorded as manual).

* ``corrections`` — the decisions of one review (the page's form, ``--apply`` JSON);
* ``values`` — the format of each kind of value (dates, số, ký hiệu, text);
* ``state`` — what still needs a person (``open_items``), page decisions;
* ``art9`` — the Art. 9 block at review: what a person may change, what is recomputed after
  (flags, the digitisation-result code), knowing acceptance without a result code;
* ``save`` — ``save_review``: apply, re-sign with the reviewer's signer, swap atomically;
* ``check`` — the review checks ``digitize verify`` runs;
* ``render`` — page images and crops from the signed PDFs (shared with the report);
* ``app`` / ``server`` — the local web application (``digitize review PATH``).
"""

from digitize.review.corrections import Corrections, load_corrections, parse_corrections
from digitize.review.save import ReviewOutcome, read_manifest, save_review
from digitize.review.state import needs_review, open_items

__all__ = [
    "Corrections",
    "ReviewOutcome",
    "load_corrections",
    "needs_review",
    "open_items",
    "parse_corrections",
    "read_manifest",
    "save_review",
]
