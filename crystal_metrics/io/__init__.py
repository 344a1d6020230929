"""Reading structure sets and writing result files."""
from .output import (
    atomic_write_bytes,
    atomic_write_text,
    check_distinct,
    check_writable,
    write_csv,
    write_json,
)
from .reading import StructureSet, read_structures, require_readable

__all__ = ["StructureSet", "atomic_write_bytes", "atomic_write_text", "check_distinct",
           "check_writable", "read_structures", "require_readable", "write_csv", "write_json"]
