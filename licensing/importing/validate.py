"""Validate the rows of a catalogue file: text cells in, clean works/identifiers/shares out.

Pure and vectorised (pandas/Arrow/numpy, no Django, no database), so a million rows are
checked in seconds and the rules can be tested and benchmarked without a database.

The file has one row per (work, holder share); rows with the same ``work_ref`` are one work.
Per-row rules (required cells, enums, identifiers, holder codes, shares) are checked chunk by
chunk, reporting progress; the cross-row rules (duplicate shares, rows of one work that
disagree, a work without identifier, shares over 100%) need the whole file and run after.

Every error names the row as a spreadsheet shows it (the header is row 1, the first data row
is row 2), the column and a message. A work with any error is "bad": it is never written
(mode ``valid_only`` writes the others, ``all_or_nothing`` writes nothing; the caller decides).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from licensing.identifiers import SCHEMES, normalise_many
from licensing.importing.reader import TRIMMED, WHITESPACE, FileProblem
from licensing.importing.shares import FULL_SHARE_PPM, share_ppm_format, share_ppm_parse_many

__all__ = [
    "CONSENTS",
    "IDENTIFIER_COLUMNS",
    "MEDIA_TYPES",
    "REQUIRED_COLUMNS",
    "ROLES",
    "Columns",
    "Validation",
    "catalogue_rows_validate",
    "columns_plan",
    "holder_codes_in",
]

# The same values as licensing.models' choices (a test keeps them in step); repeated here so
# this module imports no Django.
MEDIA_TYPES = ("text", "image", "audio", "video", "code", "dataset")
ROLES = ("author", "publisher", "performer", "producer", "other")
CONSENTS = ("licensed", "reserved")
DEFAULT_ROLE = "author"
REQUIRED_COLUMNS = ("work_ref", "title", "media_type")
IDENTIFIER_COLUMNS = SCHEMES
OPTIONAL_COLUMNS = ("holder", "share", "role", "consent")
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, *IDENTIFIER_COLUMNS, *OPTIONAL_COLUMNS)
MAX_WORK_REF = 200  # Work.work_ref max_length
MAX_TITLE = 500  # Work.title max_length
MAX_IDENTIFIER = 2000  # WorkIdentifier.value max_length
IDENTIFIERS_COLUMN = "identifiers"  # the column named by "this work has no identifier"

_WS = WHITESPACE  # the characters licensing.identifiers ignores too
_VALUE_SHOWN = 200  # characters of a cell repeated in an error


@dataclass(frozen=True)
class Columns:
    """Where each known column is in the file, and what else the header has."""

    positions: Mapping[str, int]
    identifiers: tuple[str, ...]
    ignored: tuple[str, ...]

    def has(self, name: str) -> bool:
        return name in self.positions


def columns_plan(header: Sequence[str]) -> Columns:
    """Check the header row. Raises FileProblem for a file that cannot be imported at all."""
    names = [str(h).strip(_WS).lower() for h in header]
    positions: dict[str, int] = {}
    ignored: list[str] = []
    for position, name in enumerate(names):
        if name in KNOWN_COLUMNS:
            if name in positions:
                raise FileProblem(
                    f"The header has the column '{name}' twice.", code="duplicate_column"
                )
            positions[name] = position
        elif name:
            ignored.append(str(header[position]))
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    separator = next((sep for sep in (";", "\t", "|") if any(sep in str(h) for h in header)), "")
    if missing and separator:
        raise FileProblem(
            f"The header uses {separator!r} between columns; catalogue files are comma "
            "separated. Save the file as 'CSV UTF-8 (comma delimited)' and upload it again.",
            code="missing_columns",
        )
    if missing:
        raise FileProblem(
            f"The file is missing the required column(s) {', '.join(missing)}. The first row "
            f"must be the header, with the columns work_ref, title, media_type, at least one "
            f"of {', '.join(IDENTIFIER_COLUMNS)}, and optionally {', '.join(OPTIONAL_COLUMNS)}."
            f" Found: {', '.join(h for h in map(str, header) if h) or 'nothing'}.",
            code="missing_columns",
        )
    identifiers = tuple(name for name in names if name in IDENTIFIER_COLUMNS)
    if not identifiers:
        raise FileProblem(
            "The file has no identifier column: add at least one of "
            f"{', '.join(IDENTIFIER_COLUMNS)}.",
            code="no_identifier_columns",
        )
    return Columns(positions=positions, identifiers=identifiers, ignored=tuple(ignored))


def _trimmed(rows: pd.DataFrame, position: int) -> pa.ChunkedArray | pa.Array:
    """A column's cells without surrounding whitespace, as Arrow strings. Frames from the
    reader are trimmed already and are used as they are (no copy of a big column)."""
    array = pa.array(rows[position].array, type=pa.string())
    return array if rows.attrs.get(TRIMMED) else pc.utf8_trim(array, _WS)


def holder_codes_in(rows: pd.DataFrame, columns: Columns) -> list[str]:
    """The distinct non-blank holder codes of the file, for the caller to look up. Codes are
    compared upper-cased ("rh-000042" is RH-000042)."""
    if not columns.has("holder"):
        return []
    codes = pc.utf8_upper(_trimmed(rows, columns.positions["holder"]))
    distinct = pc.unique(codes).to_pylist()
    return sorted(c for c in distinct if c)


@dataclass
class Validation:
    """What the validator found.

    - ``works``: one row per good work: ``k`` (0..n-1), work_ref, title, media_type, consent
      ("" = the catalogue's default), ``row`` (its first row in the file).
    - ``identifiers``: ``k``, scheme, value (normalised), one per work and scheme.
    - ``shares``: ``k``, holder_id, role, share_ppm.
    - ``errors``: row, column, value, message, work_ref; sorted by row.
    - ``skipped``: the works with errors: work_ref, row (its first), error_rows (text).
    """

    works: pd.DataFrame
    identifiers: pd.DataFrame
    shares: pd.DataFrame
    errors: pd.DataFrame
    skipped: pd.DataFrame
    rows_total: int
    works_total: int

    @property
    def error_count(self) -> int:
        return len(self.errors)


@dataclass
class _Errors:
    """Errors collected as (positions, column, messages) batches; framed once at the end."""

    batches: list[tuple[np.ndarray, str, np.ndarray]] = field(default_factory=list)

    def add(self, positions: np.ndarray, column: str, message: str | np.ndarray) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size == 0:
            return
        if isinstance(message, str):
            messages = np.full(positions.size, message, dtype=object)
        else:
            messages = np.asarray(message, dtype=object)
        self.batches.append((positions, column, messages))

    def positions(self) -> np.ndarray:
        if not self.batches:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([p for p, _, _ in self.batches])


def _bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _index_in(text: pa.Array, values: Sequence[str]) -> np.ndarray:
    """Position of each cell in ``values`` (-1 when not there)."""
    found = pc.index_in(text, value_set=pa.array(values, type=pa.string()))
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _first_positions(groups: np.ndarray, positions: np.ndarray, n_groups: int) -> np.ndarray:
    """For each group id in 0..n_groups-1, the smallest of its ``positions`` (-1 if none).

    ``positions`` must be increasing (rows in file order), so the first occurrence is the
    smallest; np.unique's ``return_index`` gives first occurrences in one sort.
    """
    first = np.full(n_groups, -1, dtype=np.int64)
    if groups.size:
        unique, index = np.unique(groups, return_index=True)
        first[unique] = positions[index]
    return first


def _shown(values: np.ndarray) -> np.ndarray:
    return np.array(
        [v if len(v) <= _VALUE_SHOWN else v[:_VALUE_SHOWN] + "…" for v in values], dtype=object
    )


class _Checker:
    """One validation run over ``rows``; see ``catalogue_rows_validate``."""

    def __init__(
        self,
        rows: pd.DataFrame,
        columns: Columns,
        *,
        holder_ids: Mapping[str, int],
        default_holder_id: int,
    ) -> None:
        self.rows = rows
        self.columns = columns
        self.n = len(rows)
        self.holder_codes = sorted(holder_ids)
        # Indexed by a code's position in holder_codes; position -1 (not found) gives -1.
        self.holder_id_of = np.array(
            [*(holder_ids[c] for c in self.holder_codes), -1], dtype=np.int64
        )
        self.default_holder_id = default_holder_id
        self.errors = _Errors()
        n = self.n
        self.text: dict[str, pa.ChunkedArray] = {}
        self.media = np.full(n, -1, dtype=np.int64)
        self.role = np.full(n, -1, dtype=np.int64)
        self.consent = np.full(n, -1, dtype=np.int64)  # 0 = inherit, 1 licensed, 2 reserved
        self.holder = np.full(n, -1, dtype=np.int64)
        self.ppm = np.zeros(n, dtype=np.int64)
        self.identifier_chunks: dict[str, list[pa.Array]] = {s: [] for s in columns.identifiers}
        self.any_identifier = np.zeros(n, dtype=bool)
        self.blank = np.zeros(n, dtype=bool)

    # -- per row -----------------------------------------------------------------------------

    def cell_text(self, name: str) -> pa.ChunkedArray:
        """The whole column, trimmed (computed once per column)."""
        if name not in self.text:
            self.text[name] = _trimmed(self.rows, self.columns.positions[name])
        return self.text[name]

    def rows_check(self, start: int, stop: int) -> None:
        cols = self.columns
        span = slice(start, stop)
        positions = np.arange(start, stop, dtype=np.int64)
        texts = {name: self.cell_text(name).slice(start, stop - start) for name in cols.positions}

        blank = np.ones(stop - start, dtype=bool)
        for text in texts.values():
            blank &= _bool(pc.equal(text, ""))
        self.blank[span] = blank  # a wholly empty row (spreadsheets leave them) is no row
        live = ~blank

        for name, limit in (("work_ref", MAX_WORK_REF), ("title", MAX_TITLE)):
            text = texts[name]
            empty = _bool(pc.equal(text, "")) & live
            self.errors.add(positions[empty], name, f"{name} is empty")
            long = _bool(pc.greater(pc.utf8_length(text), limit))
            self.errors.add(positions[long], name, f"{name} is longer than {limit} characters")
            nul = _bool(pc.match_substring(text, "\x00"))
            self.errors.add(positions[nul], name, f"{name} contains a NUL character")

        media = _index_in(pc.utf8_lower(texts["media_type"]), MEDIA_TYPES)
        self.media[span] = media
        media_blank = _bool(pc.equal(texts["media_type"], ""))
        self.errors.add(positions[media_blank & live], "media_type", "media_type is empty")
        self.errors.add(
            positions[(media < 0) & ~media_blank],
            "media_type",
            f"media_type must be one of {', '.join(MEDIA_TYPES)}",
        )

        if cols.has("role"):
            role = _index_in(pc.utf8_lower(texts["role"]), ROLES)
            role_blank = _bool(pc.equal(texts["role"], ""))
            role[role_blank] = ROLES.index(DEFAULT_ROLE)
            self.errors.add(positions[role < 0], "role", f"role must be one of {', '.join(ROLES)}")
        else:
            role = np.full(stop - start, ROLES.index(DEFAULT_ROLE), dtype=np.int64)
        self.role[span] = role

        if cols.has("consent"):
            found = _index_in(pc.utf8_lower(texts["consent"]), CONSENTS)
            consent = np.where(found >= 0, found + 1, -1)
            consent[_bool(pc.equal(texts["consent"], ""))] = 0
            self.errors.add(
                positions[consent < 0],
                "consent",
                f"consent must be {' or '.join(CONSENTS)}, or empty for the catalogue's default",
            )
        else:
            consent = np.zeros(stop - start, dtype=np.int64)
        self.consent[span] = consent

        if cols.has("holder"):
            code_index = _index_in(pc.utf8_upper(texts["holder"]), self.holder_codes)
            holder = self.holder_id_of[code_index]
            holder_blank = _bool(pc.equal(texts["holder"], ""))
            holder[holder_blank] = self.default_holder_id
            self.errors.add(
                positions[holder < 0],
                "holder",
                "no rights holder has this registry code (e.g. RH-000042)",
            )
        else:
            holder = np.full(stop - start, self.default_holder_id, dtype=np.int64)
        self.holder[span] = holder

        if cols.has("share"):
            share_text = texts["share"]
            ppm, reasons = share_ppm_parse_many(pd.Series(share_text.to_pandas()))
            bad = reasons.notna().to_numpy()
            self.errors.add(positions[bad], "share", reasons.to_numpy(dtype=object)[bad])
        else:
            ppm = np.full(stop - start, FULL_SHARE_PPM, dtype=np.int64)
        self.ppm[span] = ppm

        for scheme in cols.identifiers:
            self.identifier_chunks[scheme].append(
                self.identifiers_check(scheme, texts[scheme], positions)
            )

    def identifiers_check(self, scheme: str, text: pa.Array, positions: np.ndarray) -> pa.Array:
        """Normalise one identifier column's cells; each distinct spelling is checked once
        (rows of a work repeat their identifiers). Returns the canonical values (null where
        blank or invalid)."""
        present = ~_bool(pc.equal(text, ""))
        self.any_identifier[positions[present]] = True
        canonical = np.full(len(text), None, dtype=object)
        if present.any():
            cells = pc.filter(text, pa.array(present))
            codes, uniques = pd.factorize(pd.Series(cells.to_pandas()), sort=False)
            values, reasons = normalise_many(scheme, pd.Series(uniques, dtype=object))
            values = np.array(values.to_numpy(dtype=object), dtype=object)  # writable copies
            reasons = np.array(reasons.to_numpy(dtype=object), dtype=object)
            lengths = pc.utf8_length(pa.array(values, type=pa.string()))
            too_long = _bool(pc.greater(lengths, MAX_IDENTIFIER))
            reasons[too_long] = f"identifier is longer than {MAX_IDENTIFIER} characters"
            values[too_long] = None
            row_reasons = reasons[codes]
            bad = np.flatnonzero(pd.notna(row_reasons))
            self.errors.add(positions[present][bad], scheme, row_reasons[bad])
            canonical[present] = values[codes]
        return pa.array(canonical, type=pa.string())

    # -- across rows -------------------------------------------------------------------------

    def works_check(self) -> Validation:
        n = self.n
        live = ~self.blank
        work_ref = self.cell_text("work_ref")
        has_ref = live & ~_bool(pc.equal(work_ref, ""))
        ref_positions = np.flatnonzero(has_ref)
        work = np.full(n, -1, dtype=np.int64)
        codes, refs = pd.factorize(pd.Series(pc.take(work_ref, ref_positions).to_pandas()))
        work[ref_positions] = codes
        n_works = len(refs)
        first_row = _first_positions(codes, ref_positions, n_works)
        self.work, self.refs, self.n_works, self.first_row = work, refs, n_works, first_row

        self.ref_count = ref_positions.size
        title = self.cell_text("title")
        self.disagreement_check("title", ~_bool(pc.equal(title, "")), text=title)
        self.disagreement_check("media_type", self.media >= 0, codes=self.media)
        if self.columns.has("consent"):
            self.disagreement_check("consent", self.consent >= 0, codes=self.consent)

        identifier_first: dict[str, tuple[np.ndarray, pa.Array]] = {}
        for scheme in self.columns.identifiers:
            chunks = self.identifier_chunks[scheme]
            canonical = pa.concat_arrays(chunks) if chunks else pa.array([], type=pa.string())
            first = self.disagreement_check(
                scheme, ~_bool(pc.is_null(canonical)), text=canonical, show_reference=True
            )
            identifier_first[scheme] = (first, canonical)

        no_identifier = np.ones(n_works, dtype=bool)
        no_identifier[work[self.any_identifier & has_ref]] = False
        self.errors.add(
            first_row[no_identifier],
            IDENTIFIERS_COLUMN,
            f"this work has no identifier: fill in at least one of "
            f"{', '.join(self.columns.identifiers)}",
        )

        duplicate = self.duplicates_check(has_ref)
        self.share_sum_check(has_ref & ~duplicate & (self.ppm > 0))
        return self.result(identifier_first, live)

    def disagreement_check(
        self,
        column: str,
        usable: np.ndarray,
        *,
        codes: np.ndarray | None = None,
        text: pa.Array | None = None,
        show_reference: bool = False,
    ) -> np.ndarray:
        """Rows of a work whose value differs from the work's first row that has one.

        ``usable`` marks the rows with a value to compare (not blank, not already an error);
        the values are int ``codes`` or Arrow ``text``, compared directly (no hashing).
        Returns the first usable position per work (-1 where none).
        """
        positions = np.flatnonzero((self.work >= 0) & usable)
        if positions.size == self.ref_count:  # every row of every work: first rows known
            first = self.first_row
        else:
            first = _first_positions(self.work[positions], positions, self.n_works)
        reference = first[self.work[positions]]
        if codes is not None:
            same = codes[positions] == codes[reference]
        else:
            same = _bool(pc.equal(pc.take(text, positions), pc.take(text, reference)))
        differs = positions[~same]
        if differs.size:
            ref_rows = first[self.work[differs]]
            refs = self.refs[self.work[differs]]
            if show_reference:
                seen = pc.take(text, ref_rows).to_pylist()
                messages = [
                    f"{column} differs from row {r + 2} ({v}), the first row of work '{ref}'"
                    for r, v, ref in zip(ref_rows, seen, refs, strict=True)
                ]
            else:
                messages = [
                    f"{column} differs from row {r + 2}, the first row of work '{ref}'"
                    for r, ref in zip(ref_rows, refs, strict=True)
                ]
            self.errors.add(differs, column, np.array(messages, dtype=object))
        return first

    def duplicates_check(self, has_ref: np.ndarray) -> np.ndarray:
        """A holder has one share per role on a work; later repeats are errors."""
        candidates = np.flatnonzero(has_ref & (self.holder >= 0) & (self.role >= 0))
        duplicate = np.zeros(self.n, dtype=bool)
        if candidates.size == 0:
            return duplicate
        holder_codes, _ = pd.factorize(self.holder[candidates])
        key = (self.work[candidates] * (holder_codes.max() + 1) + holder_codes) * len(
            ROLES
        ) + self.role[candidates]
        _, first_index, inverse = np.unique(key, return_index=True, return_inverse=True)
        first = candidates[first_index[inverse]]
        later = candidates[first != candidates]
        duplicate[later] = True
        if later.size:
            column = "holder" if self.columns.has("holder") else "work_ref"
            messages = [
                f"this holder has a share as {ROLES[self.role[p]]} on this work already, "
                f"on row {f + 2}"
                for p, f in zip(later, first[first != candidates], strict=True)
            ]
            self.errors.add(later, column, np.array(messages, dtype=object))
        return duplicate

    def share_sum_check(self, counted: np.ndarray) -> None:
        """Shares of a work add up to at most 100%: over that, every row of the work is
        reported (the database would refuse the work anyway)."""
        positions = np.flatnonzero(counted)
        sums = np.zeros(self.n_works, dtype=np.int64)
        np.add.at(sums, self.work[positions], self.ppm[positions])
        over = sums > FULL_SHARE_PPM
        if not over.any():
            return
        rows = np.flatnonzero((self.work >= 0) & over[np.maximum(self.work, 0)])
        column = "share" if self.columns.has("share") else "work_ref"
        messages = [
            f"the shares of work '{self.refs[w]}' add up to {share_ppm_format(sums[w])}%, "
            "more than 100%"
            for w in self.work[rows]
        ]
        self.errors.add(rows, column, np.array(messages, dtype=object))

    # -- outputs -----------------------------------------------------------------------------

    def result(
        self, identifier_first: dict[str, tuple[np.ndarray, pa.Array]], live: np.ndarray
    ) -> Validation:
        work, n_works = self.work, self.n_works
        error_positions = self.errors.positions()
        bad = np.zeros(n_works, dtype=bool)
        error_works = work[error_positions]
        bad[error_works[error_works >= 0]] = True
        good = np.flatnonzero(~bad)
        k_of = np.full(n_works, -1, dtype=np.int64)
        k_of[good] = np.arange(good.size)

        first = self.first_row[good]
        works = pd.DataFrame(
            {
                "k": np.arange(good.size, dtype=np.int64),
                "work_ref": pc.take(self.cell_text("work_ref"), first).to_pandas(),
                "title": pc.take(self.cell_text("title"), first).to_pandas(),
                "media_type": np.array(MEDIA_TYPES, dtype=object)[self.media[first]],
                "consent": np.array(("", *CONSENTS), dtype=object)[self.consent[first]],
                "row": first + 2,
            }
        )

        identifier_frames = []
        for scheme, (first_with_value, canonical) in identifier_first.items():
            with_value = good[first_with_value[good] >= 0]
            identifier_frames.append(
                pd.DataFrame(
                    {
                        "k": k_of[with_value],
                        "scheme": scheme,
                        "value": pc.take(canonical, first_with_value[with_value]).to_pandas(),
                    }
                )
            )
        identifiers = pd.concat(identifier_frames, ignore_index=True).sort_values(
            ["k", "scheme"], kind="stable", ignore_index=True
        )

        share_rows = np.flatnonzero((work >= 0) & live)
        share_rows = share_rows[~bad[work[share_rows]]]
        shares = pd.DataFrame(
            {
                "k": k_of[work[share_rows]],
                "holder_id": self.holder[share_rows],
                "role": np.array(ROLES, dtype=object)[self.role[share_rows]],
                "share_ppm": self.ppm[share_rows],
            }
        )

        errors = self.errors_frame()
        skipped_works = np.flatnonzero(bad)
        if skipped_works.size:
            per_work = (
                errors[errors["work"] >= 0]
                .groupby("work")["row"]
                .agg(lambda rows: ", ".join(map(str, sorted(set(rows)))))
            )
            skipped = pd.DataFrame(
                {
                    "work_ref": self.refs[skipped_works],
                    "row": self.first_row[skipped_works] + 2,
                    "error_rows": per_work.reindex(skipped_works).to_numpy(),
                }
            )
        else:
            skipped = pd.DataFrame({"work_ref": [], "row": [], "error_rows": []})
        return Validation(
            works=works,
            identifiers=identifiers,
            shares=shares,
            errors=errors.drop(columns=["work", "order"]),
            skipped=skipped,
            rows_total=self.n,
            works_total=n_works,
        )

    def errors_frame(self) -> pd.DataFrame:
        columns = ["row", "column", "value", "message", "work_ref", "work", "order"]
        if not self.errors.batches:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}).astype(
                {"row": np.int64, "work": np.int64, "order": np.int64}
            )
        # Within a row, errors follow the file's column order.
        order_of = dict(self.columns.positions)
        frames = []
        work_ref = self.cell_text("work_ref")
        for positions, column, messages in self.errors.batches:
            if column in self.columns.positions:
                values = pc.take(self.cell_text(column), positions).to_numpy(zero_copy_only=False)
                values = _shown(values.astype(object))
            else:
                values = np.full(positions.size, "", dtype=object)
            frames.append(
                pd.DataFrame(
                    {
                        "row": positions + 2,
                        "column": column,
                        "value": values,
                        "message": messages,
                        "work_ref": pc.take(work_ref, positions).to_numpy(zero_copy_only=False),
                        "work": self.work[positions],
                        "order": order_of.get(column, len(order_of)),
                    }
                )
            )
        errors = pd.concat(frames, ignore_index=True)
        return errors.sort_values(["row", "order"], kind="stable", ignore_index=True)


def catalogue_rows_validate(
    rows: pd.DataFrame,
    columns: Columns,
    *,
    holder_ids: Mapping[str, int],
    default_holder_id: int,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = 250_000,
) -> Validation:
    """Validate the data rows of a catalogue file (as read by ``catalogue_file_read``).

    ``holder_ids`` maps the normalised registry codes that exist (``holder_codes_in`` lists
    the file's codes to look up) to organisation ids; a blank holder cell means
    ``default_holder_id`` (the catalogue's owner). ``progress(rows_done)`` is called after
    each chunk of per-row checks.
    """
    checker = _Checker(rows, columns, holder_ids=holder_ids, default_holder_id=default_holder_id)
    for start in range(0, checker.n, chunk_rows):
        stop = min(start + chunk_rows, checker.n)
        checker.rows_check(start, stop)
        if progress is not None:
            progress(stop)
    if checker.n == 0 or checker.blank.all():
        raise FileProblem("The file has a header but no rows.", code="no_rows")
    return checker.works_check()
