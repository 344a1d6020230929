"""`crystal-metrics evaluate --report DIR`: one self-contained HTML page, plus its figures as PNGs.

The page (DIR/index.html, figures inlined) holds the table of metrics; histograms of density
(g/cm³), energy (the extractor's formation energy, eV/atom, or the energy model's property) and
number of elements, and the crystal-system fractions, of the scored GEN structures and REF;
GEN's validity breakdown and the shortest interatomic distances of GEN and REF; the worst GEN
structures by each criterion, by name; and the structures that could not be read. The header
names GEN and REF (paths relative to the page), the protocol and the extractor. Files are written atomically and never replace existing ones unless `overwrite`.
"""
from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import OutputError
from .io import atomic_write_bytes, atomic_write_text, check_writable
from .metrics.symmetry import CRYSTAL_SYSTEMS
from .metrics.validity import MIN_DISTANCE
from .references import named
from .results import Evaluation

FIGURES = ("density", "energy", "n_elements", "crystal_systems", "validity")
#: Structures listed per criterion.
WORST = 10
#: Histograms span these percentiles of both sets together; values outside fall in the end bins.
RANGE_PERCENTILES = (0.5, 99.5)


def report_paths(directory) -> list[Path]:
    """The files `write_report` writes into `directory`."""
    directory = Path(directory)
    return [directory / "index.html"] + [directory / f"{name}.png" for name in FIGURES]


def check_report_writable(directory, overwrite: bool = False) -> None:
    """Raise before any work if a report file exists (without `overwrite`) or cannot be written,
    or `directory` cannot be made (its parent folder is missing or read-only, or it is a file)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"cannot write a report into {directory}: it is a file")
    if not directory.parent.is_dir():
        raise OutputError(f"cannot write a report into {directory}: folder "
                          f"{directory.parent} does not exist")
    if directory.is_dir():
        for path in report_paths(directory):
            check_writable(path, overwrite)
    else:  # made when the report is written
        check_writable(directory, overwrite)


@dataclass(frozen=True)
class Outlier:
    """One row of a worst-structures table: the structure's name, formula and values (text)."""

    name: str
    formula: str
    values: tuple[str, ...]


def robust_z(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 MAD) of `reference`: how far each value lies outside the
    reference distribution, in units of its (robust) standard deviation; shape of `values`.
    Non-finite reference values (an energy without elemental reference) are left out."""
    reference = np.asarray(reference, dtype=float)
    reference = reference[np.isfinite(reference)]
    median = np.median(reference)
    scale = 1.4826 * np.median(np.abs(reference - median))
    if scale == 0:
        scale = np.std(reference) or 1.0
    return (np.asarray(values, dtype=float) - median) / scale


def energy_axis(evaluation: Evaluation) -> tuple[str, str, str]:
    """(quantity, unit, axis label) of the energies: the extractor's formation energy, or the
    property of the energy model named in the summary (a protocol or `energy_model` of
    `evaluate` that uses CDVAE's model)."""
    model = evaluation.energy_model
    if model is None:
        label = evaluation.features.extractor.label
        return "formation energy", "eV/atom", f"formation energy ({label}, eV/atom)"
    return model["property"], model["unit"], f"{model['property']} ({model['name']}, {model['unit']})"


def worst_structures(evaluation: Evaluation, k: int = WORST) -> dict[str, tuple[tuple, list]]:
    """The k worst GEN structures by each criterion: {title: (value column names, [Outlier])}.

    Shortest interatomic distance (Å, ascending); compositionally invalid (SMACT) in reading
    order; density and formation energy furthest from REF's median in robust z-score.
    """
    names, crystals = evaluation.structures.names, evaluation.structures.crystals
    result, ref = evaluation.validity, evaluation.reference

    def table(order, **columns):
        return tuple(columns), [Outlier(names[i], crystals[i].formula,
                                        tuple(text(i) for text in columns.values()))
                                for i in order[:k]]

    invalid = np.flatnonzero(~result.compositional)
    tables = {
        "shortest interatomic distance": table(
            np.argsort(result.min_distance, kind="stable"),
            **{"min distance (Å)": lambda i: f"{result.min_distance[i]:.3f}",
               "structurally valid": lambda i: "yes" if result.structural[i] else "no"}),
        f"compositionally invalid (SMACT): {len(invalid)} of {result.n}": table(invalid)}
    energy, energy_unit, _ = energy_axis(evaluation)
    for title, unit, values, reference in (("density", "g/cm³", evaluation.densities,
                                            ref.densities),
                                           (energy, energy_unit, evaluation.energies,
                                            ref.energies)):
        z = robust_z(values, reference)
        tables[f"{title} furthest from the reference"] = table(
            np.argsort(-np.abs(z), kind="stable"),
            **{f"{title} ({unit})": lambda i, v=values: f"{v[i]:.3f}",
               "robust z vs REF": lambda i, z=z: f"{z[i]:+.1f}"})
    return tables


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _histogram(gen: np.ndarray, ref: np.ndarray, xlabel: str) -> bytes:
    """Step histograms (probability density) of GEN and REF on shared bins (10 to 60 of them,
    about the square root of the smaller set's size); non-finite values are left out."""
    from matplotlib.figure import Figure

    gen, ref = gen[np.isfinite(gen)], ref[np.isfinite(ref)]
    both = np.concatenate([gen, ref])
    low, high = np.percentile(both, RANGE_PERCENTILES)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, int(np.clip(np.sqrt(min(len(gen), len(ref))), 10, 60)) + 1)
    figure = Figure(figsize=(5.5, 3.4), layout="tight")
    ax = figure.subplots()
    for values, label, style in ((ref, "REF", "k-"), (gen, "GEN", "C0-")):
        counts, _ = np.histogram(np.clip(values, low, high), bins, density=True)
        ax.step(bins[:-1], counts, style, where="post", label=f"{label} ({len(values)})")
    ax.set(xlabel=xlabel, ylabel="probability density")
    ax.legend(fontsize=8)
    return _png(figure)


def _element_counts(gen: np.ndarray, ref: np.ndarray) -> bytes:
    """Side-by-side bars: fraction of each set's structures with 1, 2, ... elements."""
    from matplotlib.figure import Figure

    ks = np.arange(1, int(max(gen.max(), ref.max())) + 1)
    figure = Figure(figsize=(5.5, 3.4), layout="tight")
    ax = figure.subplots()
    for offset, values, label, color in ((-0.2, gen, "GEN", "C0"), (0.2, ref, "REF", "0.3")):
        ax.bar(ks + offset, [(values == k).mean() for k in ks], width=0.4, color=color,
               label=f"{label} ({len(values)})")
    ax.set(xlabel="number of elements", ylabel="fraction of structures", xticks=ks)
    ax.legend(fontsize=8)
    return _png(figure)


def _crystal_systems(evaluation: Evaluation) -> bytes:
    """Side-by-side bars: fraction of the scored GEN structures and of REF (when its structures
    were given) in each crystal system."""
    from matplotlib.figure import Figure

    gen, ref = evaluation.space_groups.gen, evaluation.space_groups.ref
    sides = [("GEN", gen, "C0")] + ([] if ref is None else [("REF", ref, "0.3")])
    x = np.arange(len(CRYSTAL_SYSTEMS))
    figure = Figure(figsize=(5.5, 3.4), layout="tight")
    ax = figure.subplots()
    width = 0.8 / len(sides)
    for k, (label, groups, color) in enumerate(sides):
        ax.bar(x + (k - (len(sides) - 1) / 2) * width, groups.crystal_system_fractions(),
               width=width, color=color, label=f"{label} ({len(groups.numbers)})")
    ax.set_xticks(x, CRYSTAL_SYSTEMS, rotation=30, ha="right")
    ax.set(ylabel="fraction of structures",
           title=f"spglib, symprec {gen.symprec:g} Å, angle {gen.angle_tolerance:g}°")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
    return _png(figure)


def _validity(evaluation: Evaluation) -> bytes:
    """Validity fractions of GEN (bars) and the shortest interatomic distances (Å) of GEN and
    REF (step histograms, probability density; GEN's alone when REF is a statistics file)."""
    from matplotlib.figure import Figure

    result = evaluation.validity
    figure = Figure(figsize=(9, 3.4), layout="tight")
    bars, distances = figure.subplots(1, 2)
    kinds = {"structural": result.structural, "compositional": result.compositional,
             "overall": result.overall}
    fractions = [flags.mean() for flags in kinds.values()]
    bars.barh(list(kinds), fractions, color=["C0", "C1", "C2"])
    for y, (fraction, flags) in enumerate(zip(fractions, kinds.values())):
        bars.text(min(fraction, 0.98), y, f"{fraction:.1%} ({int(flags.sum())}/{result.n})",
                  ha="right", va="center", color="white", fontsize=9)
    bars.set(xlim=(0, 1), xlabel="fraction of readable GEN structures")
    bars.invert_yaxis()
    sets = [(result.min_distance, "GEN", "C0-")]
    if evaluation.reference_min_distance is not None:
        sets.insert(0, (evaluation.reference_min_distance, "REF", "k-"))
    else:
        distances.set_title("REF is a statistics file: no structures", fontsize=9)
    finite = np.concatenate([values[np.isfinite(values)] for values, _, _ in sets])
    high = max(4.0, float(np.percentile(finite, 99.5)) if len(finite) else 0.0)
    bins = np.linspace(0, high, 61)
    for values, label, style in sets:
        values = values[np.isfinite(values)]
        counts, _ = np.histogram(np.clip(values, 0, high), bins, density=True)
        distances.step(bins[:-1], counts, style, where="post", label=f"{label} ({len(values)})")
    distances.axvline(MIN_DISTANCE, color="C3", ls="--", label=f"{MIN_DISTANCE} Å threshold")
    distances.set(xlabel="shortest interatomic distance (Å)", ylabel="probability density")
    distances.legend(fontsize=8)
    return _png(figure)


def figures(evaluation: Evaluation) -> dict[str, bytes]:
    """PNG bytes of each figure in FIGURES (the crystal systems only when the evaluation has
    space groups). The distributions are those of the GEN structures the EMDs scored."""
    gen, ref = evaluation.scored_features, evaluation.reference
    images = {"density": _histogram(gen.densities, ref.densities, "density (g/cm³)"),
              "energy": _histogram(gen.energies, ref.energies, energy_axis(evaluation)[2]),
              "n_elements": _element_counts(gen.n_elements, ref.n_elements)}
    if evaluation.space_groups is not None:
        images["crystal_systems"] = _crystal_systems(evaluation)
    images["validity"] = _validity(evaluation)
    return images


CAPTIONS = {"density": "Density of the scored GEN structures and REF.",
            "energy": "Energy per atom of the scored GEN structures and REF, predicted by the "
                      "extractor or the energy model.",
            "n_elements": "Number of distinct elements per structure.",
            "crystal_systems": "Crystal systems of the scored GEN structures and REF.",
            "validity": "Validity of GEN (CDVAE convention) and the shortest interatomic distances "
                        "of GEN and REF."}

STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left}th{background:#f2f2f2}td.num{text-align:right;font-family:monospace}
figure{margin:1em 0}figcaption{color:#555;font-size:0.9em}img{max-width:100%}"""


def render_html(evaluation: Evaluation, images: dict[str, bytes],
                sources: tuple[str, str] = ("", ""), k: int = WORST) -> str:
    """The report page as one string; the images are inlined as data URIs. `sources` name GEN
    and REF (paths relative to the page's folder, or a shipped reference's name) in the
    page's header, with the protocol and the extractor."""
    e = html.escape

    def table(header, rows, numeric=()):
        head = "".join(f"<th>{e(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(
            f'<td class="num">{e(str(v))}</td>' if j in numeric else f"<td>{e(str(v))}</td>"
            for j, v in enumerate(row)) + "</tr>" for row in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    reference = named(sources[1])
    shipped = (f" (shipped reference: {reference.n:,} structures, {e(reference.source)}; "
               "statistics of ALIGNN-FF, default graph)" if reference else "")
    protocol = (evaluation.scores.protocol.as_dict() if evaluation.scores is not None else None)
    parts = [f"<h1>crystal-metrics report</h1><p>GEN: <code>{e(sources[0])}</code><br>"
             + f"REF: <code>{e(sources[1])}</code>{shipped}<br>"
             + f"extractor: {e(str(evaluation.reference.extractor))}</p>"]
    if protocol:
        parts.append("<p>protocol: " + ", ".join(
            f"{e(key)} <code>{e(str(value))}</code>" for key, value in protocol.items()) + "</p>")
    parts += ["<h2>Metrics</h2>",
             table(("metric", "value"), evaluation.rows(), (1,)),
             "<h2>Distributions and validity</h2>"]
    for name in (name for name in FIGURES if name in images):
        data = base64.b64encode(images[name]).decode("ascii")
        parts.append(f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{e(CAPTIONS[name])} ({name}.png)</figcaption></figure>")
    parts.append(f"<h2>Worst structures (up to {k} per criterion)</h2>")
    for title, (columns, outliers) in worst_structures(evaluation, k).items():
        header = ("name", "formula", *columns)
        rows = [(o.name, o.formula, *o.values) for o in outliers]
        parts += [f"<h3>{e(title)}</h3>", table(header, rows, range(2, len(header))) if rows
                  else "<p>none</p>"]
    errors = evaluation["read_errors"]
    parts.append(f"<h2>Unreadable structures ({len(errors)})</h2>")
    parts.append(table(("name", "problem"), [(r["name"], r["reason"]) for r in errors])
                 if errors else "<p>none</p>")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>crystal-metrics report: {e(sources[0])}</title><style>{STYLE}</style>"
            f"</head><body>{''.join(parts)}</body></html>\n")


def _relative(source: str, directory: Path) -> str:
    """`source` relative to `directory` when it is an existing path (not a reference's name)."""
    if not source or named(source) or not Path(source).exists():
        return source
    return Path(os.path.relpath(Path(source).resolve(), directory.resolve())).as_posix()


def write_report(directory, evaluation: Evaluation, sources: tuple[str, str] = ("", ""),
                 overwrite: bool = False, k: int = WORST) -> Path:
    """Write `directory`/index.html and the PNGs of FIGURES (the folder is made if missing; its
    parent must exist); returns the page's path. `sources` name GEN and REF in the header:
    paths that exist are written relative to `directory` (the report moves with its inputs and
    shows no folder of the machine it was made on), a shipped reference by its name."""
    directory = Path(directory)
    check_report_writable(directory, overwrite)
    images = figures(evaluation)
    page = render_html(evaluation, images, tuple(_relative(s, directory) for s in sources), k)
    directory.mkdir(exist_ok=True)
    for name, data in images.items():
        atomic_write_bytes(directory / f"{name}.png", data, overwrite)
    atomic_write_text(directory / "index.html", page, overwrite)
    return directory / "index.html"
