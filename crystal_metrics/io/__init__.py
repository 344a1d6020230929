"""Reading structure sets and writing result files."""
from .output import (
    atomic_write_bytes,
    atomic_write_text,
    check_distinct,
    check_writable,
    write_csv,
    write_json,
)
from .reading import ReadError, StructureSet, read_structures

__all__ = ["ReadError", "StructureSet", "atomic_write_bytes", "atomic_write_text",
           "check_distinct", "check_writable", "read_structures", "write_csv", "write_json"]
