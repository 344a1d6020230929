"""Parse CIF text into `Crystal`s: gemmi for P1 blocks with fractional sites, pymatgen for the rest.

Atoms are taken as written: coincident sites are not merged, so two atoms on top of each other
stay two atoms (and fail structural validity), as in CDVAE's array-based check.
"""
from __future__ import annotations

import re
import warnings

import gemmi
import numpy as np

from ..crystal import OCCUPANCY_TOLERANCE, Crystal
from ..errors import StructureError

_CELL_TAGS = tuple(f"_cell_{t}" for t in
                   ("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"))
_SYMOP_TAGS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz",
               "_space_group_symop.operation_xyz")
_GEMMI_LOCATION = re.compile(r"^string:(\d+):\S*\s*")
_ELEMENT = re.compile(r"[A-Za-z][a-z]?")

#: One parsed block: (block name, Crystal) or (block name, reason it could not be used).
Block = tuple[str, "Crystal | str"]


def parse_cif_text(text: str) -> list[Block]:
    """Parse every `data_` block of a CIF string.

    Raises `StructureError` when the text is not CIF at all (syntax error, no data block).
    """
    try:
        document = gemmi.cif.read_string(text)
    except (ValueError, RuntimeError) as exc:
        message = _GEMMI_LOCATION.sub(r"line \1: ", _first_line(exc))
        raise StructureError(f"corrupt CIF: {message}") from None
    if len(document) == 0:
        raise StructureError("no data_ block found")
    return [(block.name, _parse_block(block)) for block in document]


def _parse_block(block: gemmi.cif.Block) -> Crystal | str:
    try:
        _check_cell(block)
        if _is_p1_fractional(block):
            return _parse_p1(block)
        return _parse_with_pymatgen(block)
    except StructureError as exc:
        return str(exc)


def _check_cell(block: gemmi.cif.Block) -> None:
    """Refuse cell parameters outside the CIF core dictionary's ranges: lengths > 0 Å, angles
    in (0, 180) degrees. (gemmi, pymatgen and ASE accept a negative length, which silently flips
    that lattice vector and so describes a different structure.)"""
    for tag in _CELL_TAGS:
        value = block.find_value(tag)
        number = gemmi.cif.as_number(value) if value is not None else float("nan")
        if np.isnan(number):
            continue  # missing or non-numeric: reported by the parser that needs it
        if tag.startswith("_cell_length") and number <= 0:
            raise StructureError(f"{tag} is {value}: a cell length must be positive")
        if tag.startswith("_cell_angle") and not 0 < number < 180:
            raise StructureError(f"{tag} is {value}: a cell angle must lie between 0 and 180 "
                                 "degrees")


def _is_p1_fractional(block: gemmi.cif.Block) -> bool:
    """True when the block has no symmetry beyond the identity and fractional sites."""
    for tag in _SYMOP_TAGS:
        ops = list(block.find_values(tag))
        if ops:
            return all(gemmi.cif.as_string(op).replace(" ", "").lower() == "x,y,z" for op in ops) \
                and _has_fractional_sites(block)
    name = block.find_value("_symmetry_space_group_name_H-M") or block.find_value(
        "_space_group_name_H-M_alt")
    if name is not None and gemmi.cif.as_string(name).replace(" ", "").upper() != "P1":
        return False
    return _has_fractional_sites(block)


def _has_fractional_sites(block: gemmi.cif.Block) -> bool:
    """Fractional coordinates, or no sites at all (reported by the P1 reader)."""
    return bool(block.find_values("_atom_site_fract_x")) or not block.find_values(
        "_atom_site_Cartn_x")


def _parse_p1(block: gemmi.cif.Block) -> Crystal:
    params = []
    for tag in _CELL_TAGS:
        value = block.find_value(tag)
        number = gemmi.cif.as_number(value) if value is not None else float("nan")
        if not np.isfinite(number):
            raise StructureError(f"missing or non-numeric {tag}")
        params.append(number)
    table = block.find("_atom_site_", ["fract_x", "fract_y", "fract_z", "?type_symbol", "?label",
                                       "?occupancy"])
    if len(table) == 0:
        raise StructureError("no atom sites with fractional coordinates")
    if not (table.has_column(3) or table.has_column(4)):
        raise StructureError("atom sites have neither _atom_site_type_symbol nor _atom_site_label")
    symbol_column = table.column(3) if table.has_column(3) else table.column(4)
    symbols = [gemmi.cif.as_string(s) for s in symbol_column]
    numbers = [_atomic_number(s) for s in symbols]
    coords = np.array([[gemmi.cif.as_number(v) for v in table.column(i)] for i in (0, 1, 2)]).T
    if table.has_column(5):
        occupancy = np.array([gemmi.cif.as_number(v) for v in table.column(5)])
        occupancy[np.isnan(occupancy)] = 1.0  # '?' or '.' means unknown: CIF default is 1
        partial = np.flatnonzero(np.abs(occupancy - 1.0) > OCCUPANCY_TOLERANCE)
        if len(partial):
            i = partial[0]
            raise StructureError(f"disordered site: {symbols[i]} with occupancy {occupancy[i]:g}")
    return Crystal.checked(lattice_from_parameters(*params), coords, numbers)


def _atomic_number(symbol: str) -> int:
    """Atomic number of a CIF type symbol such as 'Fe', 'Fe2+' or 'O2-'."""
    match = _ELEMENT.match(symbol)
    z = gemmi.Element(match.group(0).capitalize()).atomic_number if match else 0
    if z == 0:
        raise StructureError(f"unknown element symbol {symbol!r}")
    return z


def lattice_from_parameters(a, b, c, alpha, beta, gamma) -> np.ndarray:
    """(3, 3) lattice rows in Å from lengths (Å) and angles (degrees), pymatgen's orientation."""
    from pymatgen.core import Lattice

    return Lattice.from_parameters(a, b, c, alpha, beta, gamma).matrix.copy()


def _parse_with_pymatgen(block: gemmi.cif.Block) -> Crystal:
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parser = CifParser.from_str(block.as_string())
            structure = parser.parse_structures(primitive=False, on_error="raise")[0]
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for malformed CIFs
            raise StructureError(f"pymatgen cannot read this CIF block: {_first_line(exc)}") from None
    return Crystal.from_pymatgen(structure)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
