"""The exit-code table is a public contract: stable, unique per cause, documented."""

from __future__ import annotations

from digitize.errors import (
    DigitizeError,
    ExitCode,
    LowResolutionError,
    all_error_classes,
)

# Written down independently of the code: changing one of these breaks users' scripts.
CONTRACT = {
    "OK": 0, "INTERNAL": 1, "USAGE": 2, "INPUT": 10, "EMPTY_FILE": 11, "TRUNCATED_FILE": 12,
    "CORRUPT_FILE": 13, "UNSUPPORTED_FORMAT": 14, "TOO_LARGE": 15, "UNSAFE_PATH": 16,
    "ENCRYPTED_PDF": 17, "PDF_NOT_A_SCAN": 18, "EMPTY_DOSSIER": 19, "QUALITY": 20,
    "LOW_RESOLUTION": 21, "PAGE_COUNT_MISMATCH": 22, "SOURCE_CHANGED": 23, "OCR": 30, "PDF": 40, "SIGNING": 50,
    "CERT_REVOKED": 51, "CERT_EXPIRED": 52, "CERT_NOT_PERSONAL": 53, "BAD_PIN": 54,
    "TSA_UNAVAILABLE": 55, "SIGNER_CONFIG": 56, "SIGNER_UNAVAILABLE": 57, "PREPARED_MISMATCH": 58, "VERIFY": 60, "VERIFY_HASH": 61,
    "VERIFY_SIGNATURE": 62, "VERIFY_TRUST": 63, "VERIFY_STRUCTURE": 64, "VERIFY_PDFA": 65,
    "VERIFY_REVOCATION_UNKNOWN": 66,
    "VERIFY_REVIEW": 69, "CONFIG": 70, "OUTPUT": 80, "BATCH_PARTIAL": 90,
    "DECOMPRESSION_BOMB": 101, "DECODE_TIMEOUT": 102, "DECODER_CRASHED": 103,
    "PAGE_TIMEOUT": 104, "DOSSIER_TIMEOUT": 105, "DOSSIER_CRASHED": 106, "REVIEW": 110,
    "REVIEW_CORRECTIONS_FILE": 111, "REVIEW_UNKNOWN_TARGET": 112, "REVIEW_INVALID_VALUE": 113,
    "REVIEW_NOT_VERIFIED": 114, "REVIEW_REMOTE_BIND": 115, "INTERRUPTED": 130,
}


def test_exit_codes_are_the_documented_contract() -> None:
    assert {code.name: int(code) for code in ExitCode} == CONTRACT


def test_every_error_class_has_its_own_code_except_the_root() -> None:
    import digitize.batch  # noqa: F401 - modules that refine errors must stay in the table
    import digitize.watch  # noqa: F401

    table = [c for c in all_error_classes()
             if c is not DigitizeError and c.__module__ == "digitize.errors"]
    codes = [int(c.exit_code) for c in table]
    assert len(codes) == len(set(codes)), "two error classes share an exit code"
    assert all(code != 0 for code in codes)
    # Refinements defined elsewhere (e.g. an abandoned batch) reuse a documented code.
    assert {int(c.exit_code) for c in all_error_classes()} <= {int(c) for c in ExitCode}


def test_message_is_one_line_naming_file_and_page() -> None:
    err = LowResolutionError("100 dpi is below\nthe 200 dpi floor", path="hs/c1/scan.pdf", page=2)
    line = err.one_line()
    assert "\n" not in line
    assert line.startswith("hs/c1/scan.pdf (page 2): ")
    assert err.exit_code == ExitCode.LOW_RESOLUTION
    assert err.to_dict()["exit_code"] == 21
