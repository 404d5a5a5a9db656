"""The generated society of ``bench/society.py``: catalogue files and declaration files, all
from one seed (numpy + pyarrow, vectorised, written in chunks so memory stays flat).

Works are numbered globally ``g = 0 .. works - 1``; their media type, identifiers, holders and
popularity are functions of ``g`` and the seed, so the catalogue files and the declaration
files agree without sharing state:

- text works carry an ISBN-13 (``978000000000C + g``), image works a URL
  (``https://img.example.org/p/<g>.jpg``), audio works an ISRC (``GBBLK`` + 7 digits), code
  works a URL (``https://code.example.org/repo/<g>``); one identifier each;
- work ``g`` is enrolled by agency ``g % files`` (one catalogue file each); 1-3 holders
  (80/15/5 %: 100, 50/50 or 60/40, 33.3333/33.3333/33.3334), 2 % of works assign only 80 %;
  per-work consent blank 85 %, licensed 10 %, reserved 5 %;
- 0.3 % of works are also claimed, at 100 %, by another holder in the next agency's file (the
  same identifier, another ``work_ref``): the import opens a conflict and the work's money
  goes to suspense until staff resolve it;
- declaration lines pick works with Zipf-like popularity (``bench/cycle.py``'s ranks over a
  seeded permutation), 5 % name identifiers in no catalogue, and are written the messy ways
  licensees write them: ISBN-10s and hyphenated ISBNs, upper-case URL hosts with default
  ports and fragments, ``http://doi``-free URLs, hyphenated lower-case ISRCs.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from bench.cycle import _zipf_ranks
from bench.declarations import REGISTRY_BASE, UNKNOWN_BASE, _hyphenate, isbn10, isbn13

MEDIA = np.array(["text", "image", "audio", "code"], dtype=object)
MEDIA_P = [0.55, 0.2, 0.15, 0.1]
CHUNK = 500_000  # rows generated and written at a time


def _s(values) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _pad(values, width: int) -> pa.Array:
    return pc.utf8_lpad(_s(values), width, "0")


def work_media(works: int, seed: int) -> np.ndarray:
    """Media index (0 text, 1 image, 2 audio, 3 code) of every work."""
    rng = np.random.default_rng([seed, 1])
    return rng.choice(4, size=works, p=MEDIA_P).astype(np.int8)


def canonical_identifier(g: np.ndarray, media: np.ndarray) -> pa.Array:
    """Each work's one identifier, as written in catalogue files."""
    isbn = isbn13(REGISTRY_BASE + g)
    url_img = _join("https://img.example.org/p/", _s(g), ".jpg")
    isrc = _join("GBBLK", _pad(g, 7))
    url_code = _join("https://code.example.org/repo/", _s(g))
    value = pc.if_else(
        pa.array(media == 0),
        isbn,
        pc.if_else(pa.array(media == 1), url_img, pc.if_else(pa.array(media == 2), isrc, url_code)),
    )
    return value


def catalogue_generate(
    path: str, *, file_index: int, files: int, works: int, holders: int, seed: int
) -> dict[str, int]:
    """Agency ``file_index``'s catalogue file: its works (``g % files == file_index``), one row
    per (work, holder share), plus the disputed duplicates of the previous agency's works."""
    media_all = work_media(works, seed)
    rng = np.random.default_rng([seed, 2])
    n_holders = rng.choice([1, 2, 3], size=works, p=[0.80, 0.15, 0.05])
    first = rng.integers(0, holders, works)
    partial = rng.random(works) < 0.02
    sixty = rng.random(works) < 0.5
    consent_pick = rng.choice(3, size=works, p=[0.85, 0.10, 0.05])
    disputed = rng.random(works) < 0.003
    claimant = rng.integers(0, holders, works)

    mine = np.arange(file_index, works, files, dtype=np.int64)
    previous = (file_index - 1) % files
    dup = np.arange(previous, works, files, dtype=np.int64)
    dup = dup[disputed[dup]] if files > 1 else dup[:0]

    counts = {"rows": 0, "works": len(mine), "disputed": len(dup)}
    columns = ["work_ref", "title", "media_type", "isbn", "url", "isrc", "holder", "share",
               "role", "consent"]  # fmt: skip
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as out:
        out.write((",".join(columns) + "\n").encode())
        for start in range(0, len(mine), CHUNK):
            g = mine[start : start + CHUNK]
            k = n_holders[g]
            gw = np.repeat(g, k)
            pos = np.arange(len(gw)) - np.repeat(np.cumsum(k) - k, k)
            size = k[np.searchsorted(np.cumsum(k), np.arange(len(gw)), side="right")]
            holder = (np.repeat(first[g], k) + pos * (holders // 3 + 1)) % holders
            whole = np.where(partial[gw], 80, 100)
            share = np.select(
                [size == 1, (size == 2) & sixty[gw] & (pos == 0), (size == 2) & sixty[gw],
                 size == 2, pos < 2],
                [whole.astype(str), np.full(len(gw), "60"), np.full(len(gw), "40"),
                 (whole / 2).astype(int).astype(str), np.full(len(gw), "33.3333")],
                default="33.3334",
            ).astype(object)  # fmt: skip
            # 80 % works: shares scaled (60/40 -> 48/32, thirds -> 26.6666...): written plainly.
            share = np.where(
                partial[gw] & (size == 2) & sixty[gw], np.where(pos == 0, "48", "32"), share
            )
            share = np.where(
                partial[gw] & (size == 3), np.where(pos < 2, "26.6667", "26.6666"), share
            )
            roles = np.array(["author", "publisher", "other"], dtype=object)[pos]
            _rows_write(out, options, gw, media_all, holder, share, roles, consent_pick, "W")
            counts["rows"] += len(gw)
        if len(dup):
            roles = np.full(len(dup), "publisher", dtype=object)
            shares = np.full(len(dup), "100", dtype=object)
            _rows_write(
                out, options, dup, media_all, claimant[dup], shares, roles, consent_pick, "D"
            )
            counts["rows"] += len(dup)
    return counts


def _rows_write(out, options, gw, media_all, holder, share, roles, consent_pick, prefix) -> None:
    n = len(gw)
    media = media_all[gw]
    value = canonical_identifier(gw, media)
    empty = pa.array(np.full(n, "", dtype=object), pa.string())
    table = pa.table(
        {
            "work_ref": _join(prefix, _pad(gw, 7)),
            "title": _join("Work ", _s(gw)),
            "media_type": pa.array(MEDIA[media], pa.string()),
            "isbn": pc.if_else(pa.array(media == 0), value, empty),
            "url": pc.if_else(pa.array((media == 1) | (media == 3)), value, empty),
            "isrc": pc.if_else(pa.array(media == 2), value, empty),
            "holder": _join("RH-", _pad(holder + 1, 6)),
            "share": pa.array(np.asarray(share, dtype=object), pa.string()),
            "role": pa.array(roles, pa.string()),
            "consent": pa.array(
                np.array(["", "licensed", "reserved"], dtype=object)[consent_pick[gw]], pa.string()
            ),
        }
    )
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, write_options=options)
    out.write(sink.getvalue())


def declaration_generate(
    path: str, *, lines: int, works: int, seed: int, number: int
) -> dict[str, int]:
    """Declaration ``number``: ``lines`` lines of (scheme, identifier, quantity)."""
    media_all = work_media(works, seed)
    popularity = np.random.default_rng([seed, 3]).permutation(works).astype(np.int64)
    rng = np.random.default_rng([seed, 4, number])
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with open(path, "wb") as out:
        out.write(b"scheme,identifier,quantity\n")
        for start in range(0, lines, CHUNK):
            n = min(CHUNK, lines - start)
            g = popularity[_zipf_ranks(rng, works, n)]
            unknown = rng.random(n) < 0.05
            media = np.where(unknown, 0, media_all[g])
            form = rng.random(n)
            gs = _s(g)
            # text: ISBN-13 plain 80 %, hyphenated 10 %, ISBN-10 10 % (unknown: another range)
            stems = np.where(unknown, UNKNOWN_BASE + g, REGISTRY_BASE + g)
            i13 = isbn13(stems)
            isbn = pc.if_else(pa.array(form < 0.8), i13, _hyphenate(i13, [3, 4, 9, 12]))
            isbn = pc.if_else(pa.array(form >= 0.9), isbn10(stems), isbn)
            # image: canonical, upper-case host with default port, or with a fragment
            img = pc.if_else(
                pa.array(form < 0.7),
                _join("https://img.example.org/p/", gs, ".jpg"),
                pc.if_else(
                    pa.array(form < 0.85),
                    _join("HTTPS://IMG.EXAMPLE.ORG:443/p/", gs, ".jpg"),
                    _join("https://img.example.org/p/", gs, ".jpg#crop"),
                ),
            )
            seven = _pad(g, 7)
            isrc = pc.if_else(
                pa.array(form < 0.6),
                _join("GBBLK", seven),
                _join(
                    "gb-blk-",
                    pc.utf8_slice_codeunits(seven, 0, 2),
                    "-",
                    pc.utf8_slice_codeunits(seven, 2, 7),
                ),
            )
            code = pc.if_else(
                pa.array(form < 0.8),
                _join("https://code.example.org/repo/", gs),
                _join("https://Code.Example.org/repo/", gs, "#readme"),
            )
            identifier = pc.if_else(
                pa.array(media == 0),
                isbn,
                pc.if_else(pa.array(media == 1), img, pc.if_else(pa.array(media == 2), isrc, code)),
            )
            scheme = np.array(["isbn", "url", "isrc", "url"], dtype=object)[media]
            # a few licensees write the scheme in capitals
            scheme = np.where(form > 0.995, np.char.upper(scheme.astype(str)), scheme)
            table = pa.table(
                {
                    "scheme": pa.array(scheme.astype(object), pa.string()),
                    "identifier": identifier,
                    "quantity": _s(rng.integers(1, 100_001, n)),
                }
            )
            sink = io.BytesIO()
            pa_csv.write_csv(table, sink, write_options=options)
            out.write(sink.getvalue())
    return {"lines": lines}


def licence_lines(*, licences: int, lines: int, seed: int, undeclared: float) -> np.ndarray:
    """Lines declared by each licence (0 for the undeclared ones): lognormal weights."""
    rng = np.random.default_rng([seed, 5])
    weight = np.exp(rng.normal(0.0, 1.0, licences))
    weight[rng.random(licences) < undeclared] = 0.0
    if weight.sum() == 0:
        weight[0] = 1.0
    return rng.multinomial(lines, weight / weight.sum())
