"""Per-level and per-study summaries of Modic results: any change, and the worst type.

Works on result records (:meth:`modic.ModicResult.to_record`, rows of ``results.csv``, or
the rows of :func:`modic.read_results`), without pandas; :func:`modic.summarize` gives the
same tables as DataFrames, and :func:`modic.batch.run_batch` writes them as
``levels.csv``, ``studies.csv`` and the ``by_level`` / ``by_study`` sections of
``summary.json``.

The worst type
--------------
A disc level has two endplates (L4 inferior and L5 superior at L4/L5), a study many levels.
Their *worst* type is the first of :data:`WORST_ORDER` among them::

    type 1 > type 1/2 > type 2 > type 2/3 > type 3 > type 0

Type 1 (oedema, inflammation) comes first: it is the type most strongly associated with
low back pain and the one that evolves (Jensen et al., Eur Spine J 2008; Modic 1988), and a
mixed 1/2 change holds a type-1 component, so it comes next; type 2 (fatty marrow) is
more stable and less often painful; type 3 (sclerosis) is rare and the least associated
with pain, 2/3 sitting between 2 and 3. Any change is worse than none. The order is a
convention for summaries, not a grading of severity for a patient.

``indeterminate`` has no place in that order: it is neither a change nor normal. It is
counted apart, and is the worst type of a level or study only when none of its
endplates could be typed. So "worst ``type 0``" with ``indeterminate`` > 0 reads "no
change found, but an endplate could not be typed".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from .columns import LEVELS, TYPE_LABELS

if TYPE_CHECKING:  # pragma: no cover
    from .candidacy import Candidacy

__all__ = [
    "WORST_ORDER",
    "CHANGE_TYPES",
    "worst_type",
    "study_level_rows",
    "level_rows",
    "study_rows",
    "study_candidacy",
    "summary_sections",
    "LevelTally",
    "by_level_entry",
    "by_study_entry",
]

#: Modic type labels, worst first (see the module docstring); indeterminate is not in it.
WORST_ORDER: tuple[str, ...] = tuple(TYPE_LABELS[t] for t in ("1", "1/2", "2", "2/3", "3", "0"))
#: The labels that are a Modic change.
CHANGE_TYPES: frozenset[str] = frozenset(WORST_ORDER[:-1])
_INDETERMINATE = TYPE_LABELS["indeterminate"]
_RANK = {t: i for i, t in enumerate(WORST_ORDER)}
_LABEL_OF = {**{v: v for v in TYPE_LABELS.values()}, **TYPE_LABELS}
_VALUE_OF = {label: value for value, label in TYPE_LABELS.items()}


def _label(value: object) -> str:
    """A type label from a label or a bare ``ModicType`` value."""
    text = str(getattr(value, "value", value))
    try:
        return _LABEL_OF[text]
    except KeyError:
        raise ValueError(
            f"not a Modic type: {value!r} (expected one of {', '.join(TYPE_LABELS.values())})"
        ) from None


def worst_type(types: Iterable[object]) -> str | None:
    """The worst of some Modic types (labels or ``ModicType``), see the module docstring.

    Returns
    -------
    str or None
        A label; ``"indeterminate"`` when every type is; None when there are none.

    Examples
    --------
    >>> worst_type(["type 2", "type 1/2", "type 0"])
    'type 1/2'
    >>> worst_type(["indeterminate", "type 0"]), worst_type(["indeterminate"]), worst_type([])
    ('type 0', 'indeterminate', None)
    """
    labels = [_label(t) for t in types]
    typed = [t for t in labels if t != _INDETERMINATE]
    if typed:
        return min(typed, key=_RANK.__getitem__)
    return _INDETERMINATE if labels else None


def _level_key(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def study_level_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per study and disc level read: the types of its two endplates, the worst.

    Parameters
    ----------
    records : iterable of mapping
        Result records with ``study``, ``level``, ``endplate`` and ``modic_type``.

    Returns
    -------
    list of dict
        ``study``, ``level``, ``above`` (type of the endplate above the disc: the inferior
        endplate of the upper vertebra, or None when not read), ``below`` (the superior
        endplate of the lower vertebra), ``endplates``, ``changes`` (endplates with a
        change), ``indeterminate``, ``any_change`` (bool) and ``worst_type``; by study in
        first-seen order, then head to foot.
    """
    by: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for r in records:
        by.setdefault(str(r["study"]), {}).setdefault(str(r["level"]), []).append(r)
    rows = []
    for study, levels in by.items():
        for level in sorted(levels, key=_level_key):
            recs = levels[level]
            types = [_label(r["modic_type"]) for r in recs]
            side = {
                e: worst_type(_label(r["modic_type"]) for r in recs if r["endplate"] == e)
                for e in ("inferior", "superior")
            }
            rows.append(
                {
                    "study": study,
                    "level": level,
                    "above": side["inferior"],
                    "below": side["superior"],
                    "endplates": len(types),
                    "changes": sum(t in CHANGE_TYPES for t in types),
                    "indeterminate": sum(t == _INDETERMINATE for t in types),
                    "any_change": any(t in CHANGE_TYPES for t in types),
                    "worst_type": worst_type(types),
                }
            )
    return rows


def study_candidacy(records: Iterable[Mapping[str, Any]], study: str) -> Candidacy:
    """:func:`modic.candidacy.candidacy` of one study's records (rows, not ModicResults).

    The imaging criterion of the FDA clearance of basivertebral nerve ablation: research
    information about a regulatory criterion, not a treatment recommendation.
    """
    from .annotations import RoiLabel
    from .candidacy import candidacy
    from .criteria import ModicType

    shims = [
        SimpleNamespace(
            study_key=study,
            label=RoiLabel.for_endplate(str(r["vertebra"]), str(r["endplate"])),
            modic_type=ModicType(_VALUE_OF[_label(r["modic_type"])]),
        )
        for r in records
        if str(r["study"]) == study and r.get("endplate") in ("superior", "inferior")
    ]
    return candidacy(shims, study=study)  # type: ignore[arg-type]  # the attributes it reads


def _by_study(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r["study"]), []).append(r)
    return out


def _column(label: str) -> str:
    return "worst_" + label.replace("type ", "type_").replace("/", "_")


class LevelTally:
    """:func:`level_rows` built study by study, holding one counter row per disc level.

    ``add`` the :func:`study_level_rows` of each study in turn (each study once); ``rows``
    then gives what :func:`level_rows` gives for all their records. Its memory does not
    grow with the number of studies (:func:`modic.batch.run_batch` streams a cohort).
    """

    def __init__(self) -> None:
        self._levels: dict[str, dict[str, Any]] = {}

    def add(self, per: Iterable[Mapping[str, Any]]) -> None:
        """Count some rows of :func:`study_level_rows` (one study and level each)."""
        for r in per:
            row = self._levels.get(r["level"])
            if row is None:
                row = {"level": r["level"], "studies": 0, "studies_changed": 0}
                row.update({_column(t): 0 for t in TYPE_LABELS.values()})
                row["indeterminate_endplates"] = 0
                self._levels[r["level"]] = row
            row["studies"] += 1
            row["studies_changed"] += bool(r["any_change"])
            if r["worst_type"] is not None:
                row[_column(r["worst_type"])] += 1
            row["indeterminate_endplates"] += r["indeterminate"]

    def rows(self) -> list[dict[str, Any]]:
        """The rows of :func:`level_rows`, head to foot."""
        rows = []
        for level in sorted(self._levels, key=_level_key):
            c = self._levels[level]
            row: dict[str, Any] = {
                "level": level,
                "studies": c["studies"],
                "studies_changed": c["studies_changed"],
                "share": c["studies_changed"] / c["studies"],
            }
            row.update({_column(t): c[_column(t)] for t in TYPE_LABELS.values()})
            row["indeterminate_endplates"] = c["indeterminate_endplates"]
            rows.append(row)
        return rows


def level_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The cohort by disc level (columns :data:`modic.columns.LEVEL_COLUMNS`), head to foot.

    ``studies`` read at the level, how many of them have a change there (``studies_changed``) and the
    ``share``, how many have each worst type there (``worst_type_1``, ...), and the
    indeterminate endplates of the level.
    """
    tally = LevelTally()
    tally.add(study_level_rows(records))
    return tally.rows()


def study_rows(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per study (columns :data:`modic.columns.STUDY_COLUMNS`), in first-seen order.

    Endplates, levels read and changed, indeterminate endplates, ``any_change``, the
    ``worst_type`` over the study and the ``worst_levels`` that carry it, and the worst
    type at every level of :data:`modic.columns.LEVELS` (None where not read), and when
    the records name their vertebrae, the imaging criterion of the FDA clearance of
    basivertebral nerve ablation (:func:`study_candidacy`: ``bvn_levels``,
    ``bvn_vertebrae``, ``bvn_not_read``, space-separated).
    """
    recs = list(records)
    per = _by_study(study_level_rows(recs))
    named = all("vertebra" in r for r in recs)
    groups = _by_study(recs)
    rows = []
    for study, mine in per.items():
        worst = worst_type(r["worst_type"] for r in mine)
        row: dict[str, Any] = {
            "study": study,
            "endplates": sum(r["endplates"] for r in mine),
            "levels": len(mine),
            "levels_changed": sum(r["any_change"] for r in mine),
            "indeterminate": sum(r["indeterminate"] for r in mine),
            "any_change": any(r["any_change"] for r in mine),
            "worst_type": worst,
            "worst_levels": " ".join(
                r["level"] for r in mine if r["worst_type"] == worst and worst in CHANGE_TYPES
            ),
        }
        at = {r["level"]: r["worst_type"] for r in mine}
        row.update({level: at.get(level) for level in LEVELS})
        if named:
            c = study_candidacy(groups[study], study)
            row["bvn_levels"] = " ".join(c.levels)
            row["bvn_vertebrae"] = " ".join(c.vertebrae)
            row["bvn_not_read"] = " ".join(c.levels_not_read)
        rows.append(row)
    return rows


def by_level_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of :func:`level_rows` as its entry in summary.json's ``by_level``."""
    return {
        "studies": row["studies"],
        "studies_changed": row["studies_changed"],
        "worst_type": {t: row[_column(t)] for t in TYPE_LABELS.values()},
        "indeterminate_endplates": row["indeterminate_endplates"],
    }


def by_study_entry(row: Mapping[str, Any], per: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A study's entry in summary.json's ``by_study``: its row of :func:`study_rows` and
    its rows of :func:`study_level_rows`."""
    return {
        "any_change": row["any_change"],
        "worst_type": row["worst_type"],
        "worst_levels": row["worst_levels"].split(),
        "indeterminate": row["indeterminate"],
        "levels": {r["level"]: r["worst_type"] for r in per},
    }


def summary_sections(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``by_level`` and ``by_study`` sections of ``summary.json``.

    ``by_level``: ``{level: {"studies", "studies_changed", "worst_type": {label: n},
    "indeterminate_endplates"}}`` head to foot; ``by_study``: ``{key: {"any_change",
    "worst_type", "worst_levels": [...], "indeterminate", "levels": {level: worst type}}}``.
    (Each study's candidacy is summary.json's ``candidacy``, written by :mod:`modic.batch`,
    which builds these sections study by study with :class:`LevelTally`,
    :func:`by_level_entry` and :func:`by_study_entry`.)
    """
    per = _by_study(study_level_rows(records))
    by_level = {row["level"]: by_level_entry(row) for row in level_rows(records)}
    by_study = {row["study"]: by_study_entry(row, per[row["study"]]) for row in study_rows(records)}
    return {"by_level": by_level, "by_study": by_study}
