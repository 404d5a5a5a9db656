"""Usage-declaration matching: a pure engine (no Django) over DuckDB and Arrow."""

from licensing.matching.engine import (  # noqa: F401
    INDEX_SCHEMA,
    RESERVATIONS_SCHEMA,
    SCHEMES,
    UNITS,
    WORKS_SCHEMA,
    DeclarationRejected,
    MatchResult,
    declaration_match,
    normalise_declared,
)
