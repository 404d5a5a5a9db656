"""Identifier normalisation: real-world values, rejections with reasons, equivalences,
idempotence, and row-by-row agreement of the vectorised path with the scalar one."""

import base64
import hashlib
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import ean, isbn, issn

from licensing.identifiers import (
    SCHEMES,
    IdentifierError,
    normalise,
    normalise_many,
    parse_prefixed,
)

SPREADSHEET_SCIENTIFIC = "looks like a number mangled by a spreadsheet (scientific notation)"
ISBN_NINE_DIGITS = (
    "ISBN must have 10 or 13 digits; 9 digits usually mean a spreadsheet dropped a leading zero"
)
ISRC_FORMAT = (
    "ISRC must be a 2-letter country code, 3 letters or digits, then 7 digits (CC-XXX-YY-NNNNN)"
)


def reason_of(scheme, value):
    with pytest.raises(IdentifierError) as info:
        normalise(scheme, value)
    assert info.value.scheme == scheme
    assert info.value.value is value
    return info.value.reason


# --------------------------------------------------------------------------------------------
# Real-world values
# --------------------------------------------------------------------------------------------

VALID = [
    # ISBN: ISBN-13s stay, ISBN-10s become ISBN-13 with the 978 prefix.
    ("isbn", "978-0-439-02348-1", "9780439023481"),
    ("isbn", "0-439-02348-3", "9780439023481"),
    ("isbn", "0-306-40615-2", "9780306406157"),
    ("isbn", "978-3-16-148410-0", "9783161484100"),
    ("isbn", "0-8044-2957-X", "9780804429573"),
    ("isbn", "0-8044-2957-x", "9780804429573"),
    ("isbn", "99921-58-10-7", "9789992158104"),
    ("isbn", "1-84356-028-3", "9781843560289"),
    ("isbn", "979-10-90636-07-1", "9791090636071"),
    ("isbn", "ISBN 978 0 439 02348 1", "9780439023481"),
    ("isbn", "ISBN-13: 978-0-439-02348-1", "9780439023481"),
    ("isbn", "isbn10 0-306-40615-2", "9780306406157"),
    ("isbn", "ISBN:9780439023481", "9780439023481"),
    ("isbn", "  9780439023481\t", "9780439023481"),
    ("isbn", "\ufeff978\u20130\u2013439\u201302348\u20131\u00a0", "9780439023481"),
    # ISSN: NNNN-NNNC, uppercase X.
    ("issn", "0028-0836", "0028-0836"),  # Nature
    ("issn", "0036-8075", "0036-8075"),  # Science
    ("issn", "03178471", "0317-8471"),
    ("issn", "ISSN 0317-8471", "0317-8471"),
    ("issn", "2434-561x", "2434-561X"),
    # DOI: bare, lower-cased.
    ("doi", "10.1038/nphys1170", "10.1038/nphys1170"),
    ("doi", "10.1000/182", "10.1000/182"),
    ("doi", "doi:10.1093/AJAE/AAQ063", "10.1093/ajae/aaq063"),
    ("doi", "https://doi.org/10.1093/ajae/aaq063", "10.1093/ajae/aaq063"),
    (
        "doi",
        "10.1002/(SICI)1097-4636(199706)35:4<497::AID-JBM9>3.0.CO;2-E",
        "10.1002/(sici)1097-4636(199706)35:4<497::aid-jbm9>3.0.co;2-e",
    ),
    ("doi", "10.5555/12345678.9", "10.5555/12345678.9"),
    ("doi", "10.1000.10/abc", "10.1000.10/abc"),
    # ISRC: 12 uppercase characters.
    ("isrc", "US-RC1-76-07839", "USRC17607839"),
    ("isrc", "usrc17607839", "USRC17607839"),
    ("isrc", "GB-AYE-64-00531", "GBAYE6400531"),
    ("isrc", "ISRC QM-DA7-14-18090", "QMDA71418090"),
    # ISWC: T + 10 digits (published examples).
    ("iswc", "T-034.524.680-1", "T0345246801"),
    ("iswc", "T-000.000.001-0", "T0000000010"),  # the first ISWC ever assigned
    ("iswc", "t0345246801", "T0345246801"),
    ("iswc", "ISWC T-034524680-1", "T0345246801"),
    # URL
    ("url", "https://example.com/", "https://example.com/"),
    ("url", "https://example.com", "https://example.com/"),
    ("url", "HTTP://Example.COM/Path/To?Q=A", "http://example.com/Path/To?Q=A"),
    ("url", "https://example.com:8443/a/", "https://example.com:8443/a/"),
    ("url", "http://example.com:443/", "http://example.com:443/"),
    ("url", "https://bücher.de/katalog", "https://xn--bcher-kva.de/katalog"),
    ("url", "https://[2001:DB8::0:1]/x", "https://[2001:db8::1]/x"),
    ("url", "http://192.0.2.7:8080/img.png", "http://192.0.2.7:8080/img.png"),
    # SHA-256
    (
        "sha256",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
    (
        "sha256",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    ),
    # ISCC: conformance vectors published with iscc-core.
    (
        "iscc",
        "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY",
        "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY",
    ),
    (
        "iscc",
        "iscc:kaarmjltqcuwand2lkf2gyssnqvtyzbl4d5goqcdim",
        "ISCC:KAARMJLTQCUWAND2LKF2GYSSNQVTYZBL4D5GOQCDIM",
    ),
    ("iscc", "KUAFVC5DMJJGYKZ4MQV6B6THIBBUG", "ISCC:KUAFVC5DMJJGYKZ4MQV6B6THIBBUG"),
    ("iscc", "ISCC:AAAZXZ6OU74YAZIM", "ISCC:AAAZXZ6OU74YAZIM"),  # Meta-Code 64 bits
    ("iscc", "ISCC:AABJXZ6OU4E45RB57GAGKDA", "ISCC:AABJXZ6OU4E45RB57GAGKDA"),  # 96 bits
    ("iscc", "ISCC:EAASKDNZNYGUUF5A", "ISCC:EAASKDNZNYGUUF5A"),  # Text-Code
    ("iscc", "ISCC:EEAQAAAAAAAAAAAA", "ISCC:EEAQAAAAAAAAAAAA"),  # Image-Code
    ("iscc", "ISCC:GABVVC5DMJJGYKZ4ZBYVNYABFFYXG", "ISCC:GABVVC5DMJJGYKZ4ZBYVNYABFFYXG"),
    (
        "iscc",
        "ISCC:IAD66JNRTSKU5FLU2L7POWZNQTYKDOYQRGQJLJ24E5DWM7MPWYAPH7Q",
        "ISCC:IAD66JNRTSKU5FLU2L7POWZNQTYKDOYQRGQJLJ24E5DWM7MPWYAPH7Q",
    ),
    ("iscc", "ISCC:MAAJVNGQOUGKGDRH", "ISCC:MAAJVNGQOUGKGDRH"),  # ISCC-ID v0
    ("iscc", "ISCC:MABJVNGQOUGKGDRHQEBA", "ISCC:MABJVNGQOUGKGDRHQEBA"),  # with a counter
]


@pytest.mark.parametrize(("scheme", "value", "expected"), VALID)
def test_real_world_identifiers_normalise_to_their_canonical_form(scheme, value, expected):
    assert normalise(scheme, value) == expected


@pytest.mark.parametrize(("scheme", "value", "expected"), VALID)
def test_canonical_forms_are_fixed_points(scheme, value, expected):
    assert normalise(scheme, expected) == expected


def test_iswc_check_digit_formula_matches_the_published_examples():
    # (10 - (1 + sum(i * d_i)) % 10) % 10 for T-034.524.680-1: 1 + 178 = 179 -> 1.
    digits = [0, 3, 4, 5, 2, 4, 6, 8, 0]
    assert (10 - (1 + sum(i * d for i, d in enumerate(digits, 1))) % 10) % 10 == 1
    assert normalise("iswc", "T-034.524.680-1") == "T0345246801"
    for wrong in range(10):
        if wrong != 1:
            assert reason_of("iswc", f"T-034.524.680-{wrong}") == "ISWC check digit is wrong"


def test_iscc_id_version_1_is_accepted():
    # MainType ID (0110), realm 0, version 1, length 1 (64 bits): header 0x60 0x11.
    body = (1_751_831_876_325_218 << 12 | 1).to_bytes(8, "big")
    code = base64.b32encode(bytes([0x60, 0x11]) + body).decode().rstrip("=")
    assert normalise("iscc", code) == f"ISCC:{code}"


# --------------------------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------------------------

INVALID = [
    ("isbn", "978-0-439-02348-2", "ISBN check digit is wrong"),
    ("isbn", "0-439-02348-4", "ISBN check digit is wrong"),
    ("isbn", "9770317847001", "ISBN-13 must start with 978 or 979"),  # an ISSN barcode
    ("isbn", "9.78043902348e+12", SPREADSHEET_SCIENTIFIC),
    ("isbn", "9,78043902348E+12", SPREADSHEET_SCIENTIFIC),
    (
        "isbn",
        "9780439023481.0",
        "looks like a number mangled by a spreadsheet (decimal point added)",
    ),
    (
        "isbn",
        "9,780,439,023,481",
        "looks like a number mangled by a spreadsheet (thousands separators)",
    ),
    (
        "isbn",
        "439023483",
        ISBN_NINE_DIGITS,
    ),
    ("isbn", "97804390234", "ISBN must have 10 or 13 digits"),
    ("isbn", "97804390234811", "ISBN must have 10 or 13 digits"),
    ("isbn", "978043902348X", "X is only allowed as the check digit of an ISBN-10"),
    ("isbn", "04390X2348", "X is only allowed as the check digit of an ISBN-10"),
    (
        "isbn",
        "978-0-439-O2348-1",
        "ISBN may contain only digits, hyphens and spaces (and a final X)",
    ),
    ("isbn", "٩٧٨٠٤٣٩٠٢٣٤٨١", "ISBN may contain only digits, hyphens and spaces (and a final X)"),
    ("isbn", "ISBN1300000000", "ISBN may contain only digits, hyphens and spaces (and a final X)"),
    ("isbn", "", "value is empty"),
    ("isbn", " \t\u00a0", "value is empty"),
    ("issn", "0317-8472", "ISSN check digit is wrong"),
    (
        "issn",
        "317-8471",
        "ISSN must have 8 characters; 7 digits usually mean a spreadsheet dropped a leading zero",
    ),
    ("issn", "0317-84711", "ISSN must have 8 characters (NNNN-NNNC)"),
    ("issn", "03X7-8471", "X is only allowed as the check digit of an ISSN"),
    ("issn", "0317/8471", "ISSN may contain only digits and a hyphen (and a final X)"),
    ("issn", "3.178471E+6", SPREADSHEET_SCIENTIFIC),
    ("issn", "", "value is empty"),
    ("doi", "11.1038/nphys1170", "not a valid DOI: must look like 10.NNNN/suffix"),
    ("doi", "10.103/nphys1170", "not a valid DOI: must look like 10.NNNN/suffix"),
    ("doi", "10.1038/", "not a valid DOI: must look like 10.NNNN/suffix"),
    ("doi", "10.1038", "not a valid DOI: must look like 10.NNNN/suffix"),
    ("doi", "https://example.org/10.1038/x", "not a valid DOI: must look like 10.NNNN/suffix"),
    ("doi", "10.1038/nphys 1170", "not a valid DOI: contains whitespace or control characters"),
    (
        "doi",
        "https://doi.org/10.1038/a%20b",
        "not a valid DOI: contains whitespace or control characters",
    ),
    ("doi", "https://doi.org/10.1038/%FF", "not a valid DOI: bad percent-encoding"),
    ("doi", "", "value is empty"),
    ("isrc", "USRC1760783", "ISRC must have 12 characters (CC-XXX-YY-NNNNN)"),
    (
        "isrc",
        "US-RC1-76-0783A",
        ISRC_FORMAT,
    ),
    (
        "isrc",
        "1SRC17607839",
        ISRC_FORMAT,
    ),
    ("isrc", "XXRC17607839", "ISRC country code is unknown"),
    ("isrc", "ßRC17607839", "ISRC must have 12 characters (CC-XXX-YY-NNNNN)"),
    ("isrc", "", "value is empty"),
    ("iswc", "T-034.524.680-2", "ISWC check digit is wrong"),
    ("iswc", "T-034.524.680", "ISWC must look like T-DDD.DDD.DDD-C"),
    ("iswc", "X-034.524.680-1", "ISWC must look like T-DDD.DDD.DDD-C"),
    ("iswc", "0345246801", "ISWC must look like T-DDD.DDD.DDD-C"),
    ("iswc", "", "value is empty"),
    ("url", "ftp://example.com/file", "not a valid URL: scheme must be http or https"),
    ("url", "example.com", "not a valid URL: scheme must be http or https"),
    ("url", "//example.com/a", "not a valid URL: scheme must be http or https"),
    ("url", "javascript:alert(1)", "not a valid URL: scheme must be http or https"),
    ("url", "https://", "not a valid URL: missing host"),
    ("url", "https:///path", "not a valid URL: missing host"),
    (
        "url",
        "https://user:secret@example.com/",
        "not a valid URL: must not contain credentials (user:password@)",
    ),
    (
        "url",
        "https://user@example.com/",
        "not a valid URL: must not contain credentials (user:password@)",
    ),
    (
        "url",
        "https://example.com/a b",
        "not a valid URL: contains whitespace or control characters",
    ),
    ("url", "https://exa\nmple.com/", "not a valid URL: contains whitespace or control characters"),
    ("url", "https://example.com:99999/", "not a valid URL: invalid port"),
    ("url", "https://example.com:http/", "not a valid URL: invalid port"),
    ("url", "https://exa%6Dple.com/", "not a valid URL: invalid host"),
    ("url", "https://[::1/", "not a valid URL: invalid host"),
    ("url", "https://a..b/", "not a valid URL: invalid host"),
    ("url", "", "value is empty"),
    (
        "sha256",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
        "SHA-256 must be 64 hexadecimal characters",
    ),
    (
        "sha256",
        "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "SHA-256 may contain only hexadecimal characters (0-9, a-f)",
    ),
    (
        "sha256",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "SHA-256 may contain only hexadecimal characters (0-9, a-f)",
    ),
    ("sha256", "", "value is empty"),
    (
        "iscc",
        "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQ",
        "not a valid ISCC: not a canonical base32 encoding",
    ),
    (
        "iscc",
        "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEG",
        "not a valid ISCC: length does not match its header",
    ),
    (
        "iscc",
        "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQZ",
        "not a valid ISCC: not a canonical base32 encoding",
    ),
    (
        "iscc",
        "ISCC:KACYPXW445FTYNJ0",
        "not a valid ISCC: must be base32 (A-Z, 2-7), optionally after 'ISCC:'",
    ),
    (
        "iscc",
        "ISCC:GAAW2PRCRS5LNVZV-IAAUVACQKXE3V44W",
        "not a valid ISCC: must be base32 (A-Z, 2-7), optionally after 'ISCC:'",
    ),
    ("iscc", "ISCC:", "not a valid ISCC: must be base32 (A-Z, 2-7), optionally after 'ISCC:'"),
    ("iscc", "ISCC:AAQAAAAAAAAAAAAA", "not a valid ISCC: unknown version"),
    ("iscc", "ISCC:AQAAAAAAAAAAAAAA", "not a valid ISCC: unknown subtype"),
    ("iscc", "ISCC:QAAAAAAAAAAAAAAA", "not a valid ISCC: unknown main type"),
    ("iscc", "", "value is empty"),
]


@pytest.mark.parametrize(("scheme", "value", "reason"), INVALID)
def test_invalid_identifiers_are_rejected_with_a_reason(scheme, value, reason):
    assert reason_of(scheme, value) == reason


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("value", [None, float("nan"), pd.NA])
def test_missing_values_are_empty(scheme, value):
    assert reason_of(scheme, value) == "value is empty"


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("value", [9780439023481, 9.78043902348e12, b"9780439023481", ["x"]])
def test_values_that_are_not_text_are_rejected(scheme, value):
    assert reason_of(scheme, value) == "value must be text"


def test_unknown_scheme_is_an_identifier_error():
    with pytest.raises(IdentifierError, match="unknown identifier scheme") as info:
        normalise("ean", "9780439023481")
    assert info.value.scheme == "ean"
    with pytest.raises(IdentifierError, match="unknown identifier scheme"):
        normalise("ISBN", "9780439023481")
    with pytest.raises(IdentifierError, match="unknown identifier scheme"):
        normalise_many("ean", pd.Series(["9780439023481"]))


def test_identifier_error_is_a_value_error_with_scheme_value_and_reason():
    with pytest.raises(ValueError) as info:
        normalise("isbn", "978-0-439-02348-2")
    error = info.value
    assert isinstance(error, IdentifierError)
    assert (error.scheme, error.value, error.reason) == (
        "isbn",
        "978-0-439-02348-2",
        "ISBN check digit is wrong",
    )
    assert "ISBN check digit is wrong" in str(error)
    assert "978-0-439-02348-2" in str(error)


# --------------------------------------------------------------------------------------------
# Equivalences
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "spellings"),
    [
        ("isbn", ["0-439-02348-3", "0439023483", "978-0-439-02348-1", "ISBN 978 0 439 02348 1"]),
        ("issn", ["0317-8471", "03178471", "ISSN: 0317 8471"]),
        ("issn", ["2434-561X", "2434561x", "ISSN 2434-561x"]),
        (
            "doi",
            [
                "10.1038/NPHYS1170",
                "doi:10.1038/nphys1170",
                "DOI: 10.1038/nphys1170",
                "https://doi.org/10.1038/nphys1170",
                "http://dx.doi.org/10.1038/NPhys1170",
                "HTTPS://DOI.ORG/10.1038/nphys1170",
                "https://www.doi.org/10.1038/nphys1170",
                "doi.org/10.1038/nphys1170",
                "info:doi/10.1038/nphys1170",
                "https://doi.org/10.1038%2Fnphys1170",
                "https://doi.org/10.1038/%6Ephys1170",
            ],
        ),
        (
            "doi",
            [
                "10.1002/(SICI)1097-4636(199706)35:4<497::AID-JBM9>3.0.CO;2-E",
                "https://doi.org/10.1002/(SICI)1097-4636(199706)35%3A4%3C497%3A%3AAID-JBM9%3E3.0.CO%3B2-E",
            ],
        ),
        ("isrc", ["USRC17607839", "US-RC1-76-07839", "us-rc1-76-07839", "ISRC: US RC1 76 07839"]),
        ("iswc", ["T-034.524.680-1", "T0345246801", "T 034 524 680 1", "t-034524680-1"]),
        (
            "url",
            [
                "https://example.com/",
                "https://example.com",
                "HTTPS://EXAMPLE.COM/",
                "https://Example.Com:443/",
                "https://example.com/#top",
                "https://example.com:443#top",
            ],
        ),
        (
            "url",
            [
                "http://example.com/a/b?x=1&y=2",
                "http://EXAMPLE.com:80/a/b?x=1&y=2#section",
                "HTTP://example.COM/a/b?x=1&y=2#",
            ],
        ),
        ("url", ["https://bücher.de/", "https://BÜCHER.de", "https://xn--bcher-kva.de/"]),
        (
            "sha256",
            [
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                "SHA-256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            ],
        ),
        ("iscc", ["ISCC:EAASKDNZNYGUUF5A", "EAASKDNZNYGUUF5A", "iscc:eaaskdnznyguuf5a"]),
    ],
)
def test_spellings_of_one_identifier_normalise_to_one_value(scheme, spellings):
    assert len({normalise(scheme, s) for s in spellings}) == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("https://example.com/a/", "https://example.com/a"),  # trailing slash is kept
        ("https://example.com/A", "https://example.com/a"),  # path case is kept
        ("http://example.com/", "https://example.com/"),  # scheme is part of the resource
        ("https://example.com/?a=1&b=2", "https://example.com/?b=2&a=1"),  # query is kept as is
        ("https://example.com:8443/", "https://example.com/"),  # non-default port is kept
        ("https://example.com/~a", "https://example.com/%7Ea"),  # no percent-decoding of paths
    ],
)
def test_urls_that_name_different_resources_stay_distinct(first, second):
    assert normalise("url", first) != normalise("url", second)


# --------------------------------------------------------------------------------------------
# parse_prefixed
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isbn:978-0-439-02348-1", ("isbn", "9780439023481")),
        ("ISBN:0-439-02348-3", ("isbn", "9780439023481")),
        ("isbn: 978 0 439 02348 1", ("isbn", "9780439023481")),
        ("doi:10.1038/NPHYS1170", ("doi", "10.1038/nphys1170")),
        ("doi:https://doi.org/10.1038/nphys1170", ("doi", "10.1038/nphys1170")),
        ("url:https://Example.com:443/a#b", ("url", "https://example.com/a")),
        (
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ),
        ("ISCC:EAASKDNZNYGUUF5A", ("iscc", "ISCC:EAASKDNZNYGUUF5A")),
        ("iscc:ISCC:EAASKDNZNYGUUF5A", ("iscc", "ISCC:EAASKDNZNYGUUF5A")),
        ("iswc:T-034.524.680-1", ("iswc", "T0345246801")),
        ("issn:0317-8471", ("issn", "0317-8471")),
        ("isrc:US-RC1-76-07839", ("isrc", "USRC17607839")),
    ],
)
def test_parse_prefixed_splits_and_normalises(text, expected):
    assert parse_prefixed(text) == expected


@pytest.mark.parametrize(
    "text", ["ean:9780439023481", "https://doi.org/10.1/x", ":123", "work_id:12"]
)
def test_parse_prefixed_rejects_unknown_schemes(text):
    with pytest.raises(IdentifierError, match="unknown identifier scheme"):
        parse_prefixed(text)


@pytest.mark.parametrize("text", ["9780439023481", "", None])
def test_parse_prefixed_requires_a_scheme(text):
    with pytest.raises(IdentifierError, match="expected scheme:identifier"):
        parse_prefixed(text)


def test_parse_prefixed_rejects_an_invalid_identifier_with_its_reason():
    with pytest.raises(IdentifierError) as info:
        parse_prefixed("isbn:978-0-439-02348-2")
    assert info.value.reason == "ISBN check digit is wrong"


# --------------------------------------------------------------------------------------------
# Strategies: valid identifiers in canonical form, respelled, and corrupted
# --------------------------------------------------------------------------------------------

DIGITS = "0123456789"
ISRC_COUNTRIES = ["US", "GB", "FR", "DE", "JP", "BR", "QM", "QZ", "ZZ", "UK", "CP"]
WHITESPACE = [" ", "\t", "\n", "\u00a0", "\ufeff", "\u200b", "\r\n"]
NOISE = (
    DIGITS
    + "XxTtEe.,+-:/%#?@[]_ \t\n\u00a0\u2013\u2010\u2212\u200b\ufeff"
    + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    + "ıİſßKÜü٣\x00\x7f\x85"
)


def _isbn10_check(nine):
    total = sum((i + 1) * int(d) for i, d in enumerate(nine)) % 11
    return "X" if total == 10 else str(total)


def _iswc_check(nine):
    return str((10 - (1 + sum(i * int(d) for i, d in enumerate(nine, 1))) % 10) % 10)


@st.composite
def _interleave(draw, core, separators):
    """core with a separator drawn (often empty) between each pair of characters."""
    out = [core[0]] if core else []
    for char in core[1:]:
        out.append(draw(st.sampled_from(separators)))
        out.append(char)
    return "".join(out)


def _random_case(text):
    return st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))
    )


@st.composite
def _padded(draw, text):
    left = draw(st.lists(st.sampled_from(WHITESPACE), max_size=2))
    right = draw(st.lists(st.sampled_from(WHITESPACE), max_size=2))
    return "".join(left) + text + "".join(right)


def canonical_values(scheme):
    """Canonical (already normalised) identifiers of ``scheme``."""
    if scheme == "isbn":
        return st.builds(
            lambda prefix, body: prefix + body + ean.calc_check_digit(prefix + body),
            st.sampled_from(["978", "979"]),
            st.text(DIGITS, min_size=9, max_size=9),
        )
    if scheme == "issn":
        return st.text(DIGITS, min_size=7, max_size=7).map(
            lambda d: f"{d[:4]}-{d[4:]}{issn.calc_check_digit(d)}"
        )
    if scheme == "doi":
        return st.builds(
            lambda reg, suffix: f"{reg}/{suffix}".lower(),
            st.from_regex(r"10\.[0-9]{4,6}(\.[0-9]{1,3})?", fullmatch=True),
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20),
        )
    if scheme == "isrc":
        return st.builds(
            lambda cc, reg, year, rec: cc + reg + year + rec,
            st.sampled_from(ISRC_COUNTRIES),
            st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=3, max_size=3),
            st.text(DIGITS, min_size=2, max_size=2),
            st.text(DIGITS, min_size=5, max_size=5),
        )
    if scheme == "iswc":
        return st.text(DIGITS, min_size=9, max_size=9).map(lambda d: f"T{d}{_iswc_check(d)}")
    if scheme == "url":
        label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
        return st.builds(
            lambda scheme_, host, port, path, query: (
                f"{scheme_}://{host}{port}{path}{'?' + query if query else ''}"
            ),
            st.sampled_from(["http", "https"]),
            st.lists(label, min_size=1, max_size=4).map(".".join),
            st.sampled_from(["", ":8080", ":8443", ":1"]),
            st.from_regex(r"/([A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,20})", fullmatch=True),
            st.from_regex(r"[A-Za-z0-9._~%!$&'()*+,;=:@/?-]{0,15}", fullmatch=True),
        )
    if scheme == "sha256":
        return st.binary(min_size=32, max_size=32).map(bytes.hex)
    if scheme == "iscc":
        return _iscc_codes()
    raise AssertionError(scheme)


@st.composite
def _iscc_codes(draw):
    """ISCC units/codes built from the ISO 24138 layout (all header fields below 8)."""
    kind = draw(st.sampled_from(["unit", "code", "wide", "id0", "id1"]))
    if kind == "unit":
        maintype = draw(st.sampled_from([0, 1, 2, 3, 4, 7]))
        subtype = draw(st.integers(0, 4)) if maintype in (1, 2) else 0
        version, length = 0, draw(st.integers(0, 7))
        body = 4 * (length + 1)
    elif kind == "code":
        maintype, subtype, version = 5, draw(st.integers(0, 6)), 0
        length = draw(st.integers(0, 7))
        body = 16 + 8 * [0, 1, 1, 2, 1, 2, 2, 3][length]
    elif kind == "wide":
        maintype, subtype, version, length, body = 5, 7, 0, 0, 32
    elif kind == "id0":
        maintype, subtype, version = 6, draw(st.integers(0, 3)), 0
        length = draw(st.integers(0, 4))
        body = 8 + length
    else:
        maintype, subtype, version, length, body = 6, draw(st.integers(0, 1)), 1, 1, 8
    header = bytes([maintype << 4 | subtype, version << 4 | length])
    digest = draw(st.binary(min_size=body, max_size=body))
    return "ISCC:" + base64.b32encode(header + digest).decode().rstrip("=")


@st.composite
def respelled(draw, scheme):
    """A valid identifier as people write it, and its canonical form."""
    canonical = draw(canonical_values(scheme))
    if scheme == "isbn":
        core = canonical
        if canonical.startswith("978") and draw(st.booleans()):
            nine = canonical[3:12]
            core = nine + draw(_random_case(_isbn10_check(nine)))
        text = draw(_interleave(core, ["", "", "", "-", " ", "\u2013"]))
        label = draw(st.sampled_from(["", "", "ISBN ", "ISBN: ", "isbn-13: ", "ISBN-10 "]))
    elif scheme == "issn":
        core = canonical.replace("-", "")
        text = draw(_interleave(draw(_random_case(core)), ["", "", "-", " "]))
        label = draw(st.sampled_from(["", "", "ISSN ", "issn:"]))
    elif scheme == "doi":
        doi = draw(_random_case(canonical))
        form = draw(
            st.sampled_from(["", "doi:", "DOI: ", "https://doi.org/", "http://dx.doi.org/"])
        )
        if "://" in form:
            doi = quote(doi, safe=draw(st.sampled_from(["/", "/();:<>", ""])))
        text, label = doi, form
    elif scheme == "isrc":
        parts = [canonical[:2], canonical[2:5], canonical[5:7], canonical[7:]]
        text = draw(st.sampled_from(["", "-", " "])).join(parts)
        text = draw(_random_case(text))
        label = draw(st.sampled_from(["", "", "ISRC ", "isrc: "]))
    elif scheme == "iswc":
        digits = canonical[1:]
        text = draw(
            st.sampled_from(
                [
                    f"T-{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9]}",
                    f"T{digits}",
                    f"t-{digits[:9]}-{digits[9]}",
                    f"T {digits[:3]} {digits[3:6]} {digits[6:9]} {digits[9]}",
                ]
            )
        )
        label = draw(st.sampled_from(["", "", "ISWC "]))
    elif scheme == "url":
        scheme_, rest = canonical.split("://", 1)
        host, slash, path = rest.partition("/")
        if ":" not in host and draw(st.booleans()):
            host += ":80" if scheme_ == "http" else ":443"
        if path == "" and draw(st.booleans()):
            slash = ""
        text = f"{draw(_random_case(scheme_))}://{draw(_random_case(host))}{slash}{path}"
        text += draw(st.sampled_from(["", "#", "#frag", "#a/b?c"]))
        label = ""
    elif scheme == "sha256":
        text = draw(_random_case(canonical))
        label = draw(st.sampled_from(["", "sha256:", "SHA-256:", "sha256: "]))
    else:
        text = draw(_random_case(canonical.removeprefix("ISCC:")))
        label = draw(st.sampled_from(["", "ISCC:", "iscc:"]))
    return draw(_padded(label + text)), canonical


@st.composite
def corrupted(draw, scheme):
    """A valid spelling with one random edit: most are invalid, some stay valid."""
    text, _ = draw(respelled(scheme))
    position = draw(st.integers(0, len(text)))
    char = draw(st.sampled_from(NOISE))
    edit = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "double"]))
    if edit == "replace":
        return text[:position] + char + text[position + 1 :]
    if edit == "insert":
        return text[:position] + char + text[position:]
    if edit == "delete":
        return text[:position] + text[position + 1 :]
    if edit == "truncate":
        return text[:position]
    return text + text


SPREADSHEET_MANGLED = st.one_of(
    st.floats(min_value=1e9, max_value=1e14, allow_nan=False).map(str),
    st.floats(min_value=1e9, max_value=1e14, allow_nan=False).map(lambda f: f"{f:.11E}"),
    st.integers(10**8, 10**13).map(lambda i: f"{i:,}"),
    st.integers(10**8, 10**13).map(lambda i: f"{i}.0"),
)


def any_value(scheme):
    return st.one_of(
        respelled(scheme).map(lambda pair: pair[0]),
        corrupted(scheme),
        SPREADSHEET_MANGLED,
        st.text(max_size=30),
        st.text(NOISE, max_size=20),
        st.sampled_from(["", " ", "\u00a0", None]),
    )


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
@given(data=st.data())
def test_respelled_identifiers_normalise_to_the_canonical_form(scheme, data):
    text, canonical = data.draw(respelled(scheme))
    assert normalise(scheme, text) == canonical


@pytest.mark.parametrize("scheme", SCHEMES)
@given(data=st.data())
def test_normalise_is_idempotent(scheme, data):
    value = data.draw(any_value(scheme))
    try:
        once = normalise(scheme, value)
    except IdentifierError:
        return
    assert normalise(scheme, once) == once


@given(nine=st.text(DIGITS, min_size=9, max_size=9))
def test_isbn10_and_its_isbn13_normalise_to_the_same_value(nine):
    isbn10 = nine + _isbn10_check(nine)
    isbn13 = isbn.to_isbn13(isbn10)
    assert normalise("isbn", isbn10) == normalise("isbn", isbn13) == isbn13


@given(digits=st.text(DIGITS, min_size=13, max_size=13))
def test_isbn_acceptance_matches_python_stdnum(digits):
    try:
        normalise("isbn", digits)
        accepted = True
    except IdentifierError:
        accepted = False
    assert accepted == isbn.is_valid(digits)


@given(digits=st.text(DIGITS + "X", min_size=10, max_size=10))
def test_isbn10_acceptance_matches_python_stdnum(digits):
    try:
        normalise("isbn", digits)
        accepted = True
    except IdentifierError:
        accepted = False
    assert accepted == isbn.is_valid(digits)


@given(digits=st.text(DIGITS + "X", min_size=8, max_size=8))
def test_issn_acceptance_matches_python_stdnum(digits):
    try:
        normalise("issn", digits)
        accepted = True
    except IdentifierError:
        accepted = False
    assert accepted == issn.is_valid(digits)


@given(data=st.data(), digit=st.integers(0, 9))
def test_a_changed_check_digit_is_always_rejected(data, digit):
    scheme = data.draw(st.sampled_from(["isbn", "issn", "iswc"]))
    canonical = data.draw(canonical_values(scheme))
    if canonical[-1] == str(digit):
        return
    assert "check digit is wrong" in reason_of(scheme, canonical[:-1] + str(digit))


@given(value=SPREADSHEET_MANGLED)
def test_spreadsheet_mangled_numbers_are_never_accepted(value):
    for scheme in ("isbn", "issn"):
        with pytest.raises(IdentifierError):
            normalise(scheme, value)


# --------------------------------------------------------------------------------------------
# Vectorised path
# --------------------------------------------------------------------------------------------


def assert_agrees_with_scalar(scheme, series):
    canonical, reasons = normalise_many(scheme, series)
    assert canonical.index.equals(series.index)
    assert reasons.index.equals(series.index)
    for position, value in enumerate(series.tolist()):
        try:
            expected = (normalise(scheme, value), None)
        except IdentifierError as error:
            expected = (None, error.reason)
        got = (canonical.iloc[position], reasons.iloc[position])
        assert got == expected, (scheme, value)


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_normalise_many_agrees_with_normalise(scheme, data):
    values = data.draw(st.lists(any_value(scheme), max_size=25))
    as_object = pd.Series(values, dtype=object)
    assert_agrees_with_scalar(scheme, as_object)
    texts = [v for v in values if v is not None]
    assert_agrees_with_scalar(scheme, pd.Series(texts, dtype="str"))
    assert_agrees_with_scalar(scheme, pd.Series(texts, dtype="string[python]"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_normalise_many_agrees_on_the_real_world_examples(scheme):
    values = [v for s, v, _ in VALID if s == scheme] + [v for s, v, _ in INVALID if s == scheme]
    assert_agrees_with_scalar(scheme, pd.Series(values, dtype=object))
    assert_agrees_with_scalar(scheme, pd.Series(values, dtype="str"))


def test_normalise_many_keeps_index_and_reports_empty_and_non_text_rows():
    values = pd.Series(
        ["978-0-439-02348-1", None, "", float("nan"), 9780439023481, "0-439-02348-4"],
        index=[10, 20, 30, 40, 50, 60],
        name="isbn",
        dtype=object,
    )
    canonical, reasons = normalise_many("isbn", values)
    assert canonical.tolist() == ["9780439023481", None, None, None, None, None]
    assert reasons.tolist() == [
        None,
        "value is empty",
        "value is empty",
        "value is empty",
        "value must be text",
        "ISBN check digit is wrong",
    ]
    assert list(canonical.index) == [10, 20, 30, 40, 50, 60]
    assert canonical.name == reasons.name == "isbn"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_normalise_many_accepts_an_empty_series(scheme):
    canonical, reasons = normalise_many(scheme, pd.Series([], dtype="str"))
    assert len(canonical) == len(reasons) == 0


def test_normalise_many_handles_text_arrow_cannot_hold():
    values = pd.Series(["978-0-439-02348-1", "97804390\ud8002348"], dtype=object)
    assert_agrees_with_scalar("isbn", values)
    canonical, reasons = normalise_many("isbn", values)
    assert canonical[0] == "9780439023481"
    assert reasons[1] is not None


def test_normalise_many_agrees_on_a_large_mixed_column():
    rng = np.random.default_rng(7)
    bodies = rng.integers(0, 10, size=(20_000, 12))
    bodies[:, :3] = [9, 7, 8]
    valid = ["".join(map(str, b)) + ean.calc_check_digit("".join(map(str, b))) for b in bodies]
    values = []
    for i, v in enumerate(valid):
        kind = i % 5
        if kind == 1:
            v = f"{v[:3]}-{v[3]}-{v[4:7]}-{v[7:12]}-{v[12]}"
        elif kind == 2:
            v = isbn.to_isbn10(v) if v.startswith("978") else v
        elif kind == 3:
            v = v[:-1] + str((int(v[-1]) + 1) % 10)
        elif kind == 4:
            v = f"{float(v):.11e}"
        values.append(v)
    series = pd.Series(values, dtype="str")
    canonical, reasons = normalise_many("isbn", series)
    expected = []
    for v in values:
        try:
            expected.append((normalise("isbn", v), None))
        except IdentifierError as error:
            expected.append((None, error.reason))
    assert list(zip(canonical, reasons, strict=True)) == expected
    assert canonical.notna().sum() == 12_000


def test_sha256_of_real_content_normalises():
    digest = hashlib.sha256(b"Blanket").hexdigest()
    assert normalise("sha256", digest.upper()) == digest


# URL pieces that sit on the edges of the vectorised URL path (ports, separators, case,
# credentials, brackets, percent signs, non-ASCII, whitespace): each drawn URL is a few of
# them glued together, so most are near-misses of the usual shape.
URL_PIECES = st.sampled_from(
    [
        "http", "https", "HTTPS", "hTTp", "ftp", "://", ":/", "//", "/", ":", ":443", ":80",
        ":0443", ":8080", ":99999", ":", "@", "user:pw@", "[", "]", "[::1]", "%41", "?", "#",
        "??", "##", "a", "B", "x.org", "EXAMPLE.COM", "ex-1.org.", "..", ".", "_", "-", "~",
        "bücher.de", "é", " ", "\t", "\u00a0", "\x7f", "\x85", "p/q", "k=v&w=1", "%2F", "\\",
    ]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    urls=st.lists(
        st.one_of(
            st.lists(URL_PIECES, min_size=1, max_size=9).map("".join),
            st.builds(
                lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
                st.sampled_from(["http", "https", "HTTP", "Https"]),
                st.sampled_from(["example.com", "IMG.Example.ORG", "a.b.", "x_y-z.io"]),
                st.sampled_from(["", ":80", ":443", ":8443", ":", ":00080"]),
                st.lists(URL_PIECES, max_size=6).map("".join),
            ),
        ),
        max_size=30,
    )
)
def test_vectorised_urls_agree_with_the_scalar_rule(urls):
    """The Arrow path for URLs (``_fast_url``) gives exactly ``normalise``'s answer, near the
    usual shape and far from it."""
    assert_agrees_with_scalar("url", pd.Series(urls, dtype="str"))
    assert_agrees_with_scalar("url", pd.Series(urls, dtype=object))


def test_most_society_style_urls_take_the_vectorised_path(monkeypatch):
    """Upper-case hosts, default ports and fragments (the usual mess of a declaration) are
    normalised without the per-value rule; a non-default port still takes it."""
    import licensing.identifiers as identifiers

    calls = []
    scalar = identifiers._normalise_url
    monkeypatch.setattr(
        identifiers,
        "_NORMALISERS",
        {**identifiers._NORMALISERS, "url": lambda t: calls.append(t) or scalar(t)},
    )
    values = [
        "HTTPS://IMG.EXAMPLE.ORG:443/p/1.jpg",
        "https://img.example.org/p/2.jpg#crop",
        "http://Example.com",
        "https://example.com:8443/a",
    ]
    canonical, _ = normalise_many("url", pd.Series(values, dtype="str"))
    assert canonical.tolist() == [
        "https://img.example.org/p/1.jpg",
        "https://img.example.org/p/2.jpg",
        "http://example.com/",
        "https://example.com:8443/a",
    ]
    assert calls == ["https://example.com:8443/a"]
