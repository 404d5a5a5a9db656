"""Catalogue file import, the parts that need no Django: frames in, frames out.

- ``reader``: CSV (UTF-8) / XLSX -> header and text cells; whole-file problems (encoding,
  format, emptiness) raise ``FileProblem``.
- ``shares``: percent text -> exact integer parts per million.
- ``validate``: cells -> clean works, identifiers and shares, plus every row error.
- ``report``: the errors as a downloadable CSV.
- ``store``: the set-based write of a validation through a database cursor.

``licensing.services.imports`` runs them as a job; they can be tested and benchmarked alone.
"""
