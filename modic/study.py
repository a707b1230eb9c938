"""Pick the sagittal T1, T2 and STIR series of a lumbar study and load them.

Modic changes are read on sagittal images: a T1-weighted series (required), a
T2-weighted series without fat suppression and, when present, a STIR or fat-suppressed
T2 series. When exactly one series fits a role it is picked automatically; when several
do, modic does not guess: it raises :class:`~modic.errors.SeriesSelectionError` listing
the candidates, and the user chooses with ``t1=``, ``t2=``, ``stir=`` (series number,
stack key, SeriesInstanceUID or description).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .dicomfolder import scan, series_matches
from .errors import SeriesSelectionError
from .sequence import Plane, Role
from .series import ScanResult, Series, Study
from .volume import Volume, load_volume

__all__ = ["LoadedStudy", "Selection", "load_study", "select_series", "select_study", "READING_ROLES"]

#: The roles used for Modic reading, in the order they are picked.
READING_ROLES: tuple[Role, ...] = (Role.T1, Role.T2, Role.STIR)

Selector = int | str


@dataclass(frozen=True)
class Selection:
    """The series picked for one role, and why (or why none was).

    Attributes
    ----------
    role : Role
    series : Series or None
    reason : str
    candidates : tuple of Series
        Every series that fitted the role (several when the choice is ambiguous).
    """

    role: Role
    series: Series | None
    reason: str
    candidates: tuple[Series, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.series is None and len(self.candidates) > 1


def _candidates(study: Study, role: Role) -> tuple[list[Series], list[Series]]:
    """(good candidates, near misses) for a reading role among a study's series."""
    good, near = [], []
    for s in study.series:
        if s.role is not role or s.plane is not Plane.SAGITTAL:
            continue
        if not s.usable or s.is_derived:
            near.append(s)
        elif role in (Role.T1, Role.T2) and s.identity.fat_suppressed:
            near.append(s)
        else:
            good.append(s)
    return good, near


def select_series(study: Study, role: Role | str, choice: Selector | None = None) -> Selection:
    """Pick the sagittal series of one role for Modic reading.

    Parameters
    ----------
    study : Study
    role : Role or str
        ``Role.T1``, ``Role.T2`` or ``Role.STIR``.
    choice : int or str, optional
        The user's choice: series number, stack key (``"7.2"``), SeriesInstanceUID or
        SeriesDescription. It wins over detection, whatever the detected role.

    Returns
    -------
    Selection
        ``series`` is None when no series fits, or when several do (``candidates``).

    Raises
    ------
    SeriesSelectionError
        If ``choice`` matches no series, or several stacks.
    """
    role = Role(role)
    if choice is not None:
        hits = [s for s in study.series if series_matches(s, choice)]
        if len(hits) != 1:
            listing = _listing(study.series)
            what = "no series" if not hits else f"{len(hits)} series ({', '.join(s.key for s in hits)})"
            raise SeriesSelectionError(
                f"{role.value} choice {choice!r} matches {what} in study {study.key}; "
                f"choose one of:\n{listing}"
            )
        s = hits[0]
        note = "" if s.role is role else f" (detected as {s.role.value} {s.plane.value})"
        return Selection(role, s, f"chosen by the user: series {s.label()}{note}", (s,))
    good, near = _candidates(study, role)
    if len(good) == 1:
        s = good[0]
        return Selection(role, s, f"the only sagittal {role.value} series: {s.label()}", (s,))
    if len(good) > 1:
        return Selection(
            role,
            None,
            f"{len(good)} sagittal {role.value} series fit ({', '.join(s.label() for s in good)}); "
            f"choose one with {role.name.lower()}=SERIES",
            tuple(good),
        )
    if near:
        why = "; ".join(f"{s.label()}: {_why_not(s)}" for s in near)
        return Selection(role, None, f"no usable sagittal {role.value} series ({why})", tuple(near))
    return Selection(role, None, f"no sagittal {role.value} series in the study", ())


def _why_not(s: Series) -> str:
    if not s.usable:
        return "; ".join(s.problems) or "inconsistent geometry"
    if s.is_derived:
        return "derived image (ImageType DERIVED)"
    if s.identity.fat_suppressed:
        return "fat-suppressed"
    return "not suitable"


def _listing(series: Iterable[Series]) -> str:
    return "\n".join(f"  {s.key:>6}  {s.role.value:<9} {s.plane.value:<9} {s.description}" for s in series)


def select_study(result: ScanResult, choice: str | None = None) -> Study:
    """The one study of a scan, or the one the user names.

    Parameters
    ----------
    result : ScanResult
    choice : str, optional
        Study key (see :attr:`Study.key`), StudyInstanceUID or AccessionNumber.

    Raises
    ------
    SeriesSelectionError
        If the scan found no study, several and no choice, or the choice matches none.
    """
    studies = result.studies
    if choice is not None:
        hits = [
            st
            for st in studies
            if choice in (st.key, st.study_uid) or (st.accession_number and choice == st.accession_number)
        ]
        if len(hits) != 1:
            keys = ", ".join(st.key for st in studies) or "none"
            raise SeriesSelectionError(
                f"no single study matches {choice!r} under {result.root} (studies: {keys})"
            )
        return hits[0]
    if not studies:
        raise SeriesSelectionError(
            f"no DICOM images found under {result.root} ({result.n_files} files looked at, "
            f"{len(result.skipped)} skipped)"
        )
    if len(studies) > 1:
        keys = "\n".join(f"  {st.key}  {len(st.series)} series  {st.description}" for st in studies)
        raise SeriesSelectionError(
            f"{len(studies)} studies found under {result.root}; choose one with study=KEY:\n{keys}"
        )
    return studies[0]


def _skipped_summary(study: Study, examples: int = 4) -> str:
    """Lines naming the files of ``study`` the scan could not use, by reason: they may be the
    missing series (a truncated or broken T1 would otherwise show only as "no T1")."""
    if not study.skipped:
        return ""
    by_reason: dict[str, list[Path]] = {}
    for f in study.skipped:
        by_reason.setdefault(f.reason, []).append(f.path)
    lines = [f"\n{len(study.skipped)} file(s) of this study could not be used:"]
    for reason, paths in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))[:examples]:
        lines.append(f"  {len(paths)} x {reason} (e.g. {paths[0]})")
    if len(by_reason) > examples:
        lines.append(f"  ... and {len(by_reason) - examples} other reason(s); `modic info` lists them all")
    return "\n".join(lines)


@dataclass
class LoadedStudy:
    """The volumes of a study used for Modic reading.

    Attributes
    ----------
    study : Study
        Header information of every series of the study.
    t1 : Volume
        Sagittal T1-weighted volume.
    t2 : Volume or None
        Sagittal T2-weighted volume (no fat suppression).
    stir : Volume or None
        Sagittal STIR or fat-suppressed T2 volume.
    selections : dict of Role to Selection
        Which series was picked for each role, and why.
    """

    study: Study
    t1: Volume
    t2: Volume | None
    stir: Volume | None
    selections: dict[Role, Selection] = field(default_factory=dict)

    @property
    def volumes(self) -> dict[Role, Volume]:
        """The loaded volumes by role."""
        out = {Role.T1: self.t1}
        if self.t2 is not None:
            out[Role.T2] = self.t2
        if self.stir is not None:
            out[Role.STIR] = self.stir
        return out

    @property
    def key(self) -> str:
        """Pseudonymous study key."""
        return self.study.key

    def __repr__(self) -> str:
        parts = ", ".join(f"{r.value}={v.series.key}" for r, v in self.volumes.items())
        return f"<LoadedStudy {self.key}: {parts}>"


def load_study(
    source: str | os.PathLike[str] | ScanResult | Study,
    *,
    t1: Selector | None = None,
    t2: Selector | None = None,
    stir: Selector | None = None,
    study: str | None = None,
    roles: Mapping[str, Role | str] | None = None,
) -> LoadedStudy:
    """Load the sagittal T1, T2 and STIR volumes of a lumbar study.

    Parameters
    ----------
    source : path-like, ScanResult or Study
        A folder (scanned recursively), the result of :func:`modic.scan`, or one of its
        studies.
    t1, t2, stir : int or str, optional
        Override the automatic choice: series number, stack key, SeriesInstanceUID or
        SeriesDescription.
    study : str, optional
        Which study, when the folder holds several: study key, StudyInstanceUID or
        AccessionNumber.
    roles : mapping, optional
        Role overrides passed to :func:`modic.scan` (only when ``source`` is a path).

    Returns
    -------
    LoadedStudy

    Raises
    ------
    SeriesSelectionError
        If there is no sagittal T1, no sagittal T2 or STIR, or several candidates for a
        role (the message lists them and says how to choose).

    Examples
    --------
    >>> import modic
    >>> st = modic.load_study(modic.data.sample_study_path("ge_3T_type3_mixed12"))
    >>> st
    <LoadedStudy cbc2380c2f: T1=2, T2=3, STIR=4>
    >>> st.t2.shape, [round(v, 2) for v in st.t2.spacing]  # T2 on its own grid: (slice, row, col), mm
    ((13, 208, 208), [4.4, 1.44, 1.44])
    """
    if isinstance(source, Study):
        the_study = source
    else:
        result = source if isinstance(source, ScanResult) else scan(source, roles=roles)
        the_study = select_study(result, study)
    choices = {Role.T1: t1, Role.T2: t2, Role.STIR: stir}
    selections = {role: select_series(the_study, role, choices[role]) for role in READING_ROLES}
    problems = []
    t1_sel = selections[Role.T1]
    if t1_sel.series is None:
        problems.append(f"T1: {t1_sel.reason}")
    for role in (Role.T2, Role.STIR):
        if selections[role].ambiguous:
            problems.append(f"{role.value}: {selections[role].reason}")
    if selections[Role.T2].series is None and selections[Role.STIR].series is None and not problems:
        problems.append(f"T2/STIR: {selections[Role.T2].reason}, and {selections[Role.STIR].reason}")
    if problems:
        raise SeriesSelectionError(
            f"study {the_study.key}: cannot pick the series for Modic reading:\n  "
            + "\n  ".join(problems)
            + f"\nseries in the study:\n{_listing(the_study.series)}"
            + _skipped_summary(the_study)
        )
    vols = {role: load_volume(sel.series) for role, sel in selections.items() if sel.series is not None}
    return LoadedStudy(
        study=the_study,
        t1=vols[Role.T1],
        t2=vols.get(Role.T2),
        stir=vols.get(Role.STIR),
        selections=selections,
    )
