"""Summarise the attempt log: per trainee agreement with the keys, and the hardest cases.

Agreement is Cohen's kappa (unweighted) between the trainee's types and the keys' over
every endplate the trainee answered in their **first** attempt at each case (later
attempts come after the key was revealed), with its 95 % confidence interval from the
large-sample standard error of Fleiss, Cohen & Everitt (1969), shown next to the published
agreement between expert readers: kappa 0.56-0.74 (Fayad 2009), 0.59 (Carrino 2009).
Over fewer than :data:`MIN_KAPPA_ENDPLATES` endplates or :data:`MIN_KAPPA_CHANGES` Modic
changes the comparison says so instead of "within": a handful of mostly normal endplates
gives an interval wider than the expert range. Per-type recall ("type 1: 2 of 3") says
which types were found.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .log import read_attempts, with_current_ids

__all__ = [
    "EXPERT_KAPPA_RANGE",
    "MIN_KAPPA_ENDPLATES",
    "MIN_KAPPA_CHANGES",
    "kappa_interval",
    "type_recall",
    "EXPERT_KAPPA_SOURCE",
    "cohen_kappa",
    "TraineeSummary",
    "CaseSummary",
    "EndplateMisses",
    "TeachingSummary",
    "summary",
]

#: Published agreement between expert readers on the Modic type (Cohen's kappa).
EXPERT_KAPPA_RANGE: tuple[float, float] = (0.56, 0.74)
EXPERT_KAPPA_SOURCE = "expert readers: kappa 0.56-0.74 (Fayad 2009); 0.59 (Carrino 2009)"
#: Below this many endplates (or :data:`MIN_KAPPA_CHANGES` changes in the keys) a trainee's
#: kappa is not compared with the expert range. A rule of thumb, not a power calculation:
#: with 30 endplates and kappa about 0.6 the 95 % interval of Fleiss, Cohen & Everitt (1969)
#: is still about +-0.2 wide, as wide as the expert range itself (0.56-0.74).
MIN_KAPPA_ENDPLATES = 30
#: ... and below this many Modic changes (key type other than 0) among them: kappa over
#: mostly normal endplates measures agreement on "normal", not on the type.
MIN_KAPPA_CHANGES = 5
_Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def cohen_kappa(rater_a: Sequence[str], rater_b: Sequence[str]) -> float | None:
    """Cohen's kappa (unweighted) between two raters' labels of the same items.

    ``kappa = (p_o - p_e) / (1 - p_e)`` with ``p_o`` the observed share of agreement and
    ``p_e = sum_c p_a(c) p_b(c)`` the agreement expected from the two raters' label
    frequencies.

    Returns
    -------
    float or None
        None when kappa is undefined: no items, or both raters used one and the same
        label for everything (``p_e = 1``).

    Examples
    --------
    >>> cohen_kappa(["0", "0", "1", "2"], ["0", "0", "1", "1"])  # p_o = 3/4, p_e = 3/8
    0.6
    """
    if len(rater_a) != len(rater_b):
        raise ValueError(
            f"the raters labelled {len(rater_a)} and {len(rater_b)} items; they must label the same"
        )
    n = len(rater_a)
    if n == 0:
        return None
    p_o = sum(1 for a, b in zip(rater_a, rater_b, strict=True) if a == b) / n
    ca, cb = Counter(rater_a), Counter(rater_b)
    p_e = sum(ca[c] * cb[c] for c in ca) / (n * n)
    if p_e >= 1.0:
        return None
    return (p_o - p_e) / (1.0 - p_e)


def kappa_interval(
    rater_a: Sequence[str], rater_b: Sequence[str], level: float = 0.95
) -> tuple[float, float, float] | None:
    """Cohen's kappa with its large-sample standard error and confidence interval.

    The standard error is the non-null asymptotic one of Fleiss, Cohen & Everitt (1969),
    "Large sample standard errors of kappa and weighted kappa", Psychological Bulletin
    72:323-327 (also Fleiss, *Statistical Methods for Rates and Proportions*, eq. 18.15),
    with ``p_ij`` the share of items rated ``i`` by A and ``j`` by B and ``p_i.``, ``p_.j``
    the marginal shares::

        var = [ sum_i p_ii ((1 - p_e) - (p_i. + p_.i)(1 - p_o))^2
                + (1 - p_o)^2 sum_{i != j} p_ij (p_.i + p_j.)^2
                - (p_o p_e - 2 p_e + p_o)^2 ] / (n (1 - p_e)^4)

    and the interval is Wald's, ``kappa -+ z se``, clipped to [-1, 1]. It is a
    large-sample formula: over few items it is too narrow, which is one more reason for
    the small-sample warning of :class:`TraineeSummary`.

    Returns
    -------
    (se, low, high) or None
        None when kappa is undefined (see :func:`cohen_kappa`).

    Examples
    --------
    >>> se, lo, hi = kappa_interval(["0", "0", "1", "1"], ["0", "0", "1", "0"])
    >>> round(se, 3), round(lo, 2), round(hi, 2)
    (0.375, -0.23, 1.0)
    """
    kappa = cohen_kappa(rater_a, rater_b)
    if kappa is None:
        return None
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    import statistics

    n = len(rater_a)
    labels = sorted(set(rater_a) | set(rater_b))
    pairs = Counter(zip(rater_a, rater_b, strict=True))
    row = {c: sum(1 for a in rater_a if a == c) / n for c in labels}  # p_i.
    col = {c: sum(1 for b in rater_b if b == c) / n for c in labels}  # p_.j
    p_o = sum(pairs[(c, c)] for c in labels) / n
    p_e = sum(row[c] * col[c] for c in labels)
    diag = sum(pairs[(c, c)] / n * ((1 - p_e) - (row[c] + col[c]) * (1 - p_o)) ** 2 for c in labels)
    off = (1 - p_o) ** 2 * sum(
        pairs[(i, j)] / n * (col[i] + row[j]) ** 2 for i in labels for j in labels if i != j
    )
    var = (diag + off - (p_o * p_e - 2 * p_e + p_o) ** 2) / (n * (1 - p_e) ** 4)
    se = max(var, 0.0) ** 0.5
    z = _Z95 if level == 0.95 else statistics.NormalDist().inv_cdf(0.5 + level / 2)
    return se, max(-1.0, kappa - z * se), min(1.0, kappa + z * se)


def type_recall(answers: Sequence[str | None], keys: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Per key type, ``(found, of)``: how many endplates of that key type got exactly that type.

    Unanswered endplates (None) count in ``of``: a change left unanswered was not found.

    Examples
    --------
    >>> type_recall(["1", "0", None, "2"], ["1", "1", "1", "2"])
    {'1': (1, 3), '2': (1, 1)}
    """
    out: dict[str, list[int]] = {}
    for a, k in zip(answers, keys, strict=True):
        entry = out.setdefault(str(k), [0, 0])
        entry[1] += 1
        entry[0] += int(a is not None and str(a) == str(k))
    order = ["0", "1", "2", "3", "1/2", "2/3"]
    return {k: (v[0], v[1]) for k, v in sorted(out.items(), key=lambda kv: (order + [kv[0]]).index(kv[0]))}


def _recall_text(recall: Mapping[str, tuple[int, int]]) -> str:
    return ", ".join(f"{'normal' if t == '0' else 'type ' + t}: {f} of {n}" for t, (f, n) in recall.items())


@dataclass(frozen=True)
class TraineeSummary:
    """One trainee's record.

    Attributes
    ----------
    trainee : str
    attempts : int
    cases : int
        Distinct cases attempted.
    mean_score : float
        Over all attempts.
    first_score : float
        Mean score of the first attempt at each case.
    kappa : float or None
        Cohen's kappa of the first attempts' answered types against the keys.
    n_kappa : int
        Endplates behind the kappa.
    n_missed : int
        Endplates of the keys left unanswered in first attempts (not in the kappa).
    kappa_se : float or None
        Its standard error (:func:`kappa_interval`).
    kappa_ci : (float, float) or None
        Its 95 % confidence interval.
    n_changes : int
        Endplates behind the kappa whose key is a Modic change (not type 0).
    recall : dict of str to (int, int)
        Per key type, ``(found, of)`` over the first attempts, unanswered endplates
        included (:func:`type_recall`).
    """

    trainee: str
    attempts: int
    cases: int
    mean_score: float
    first_score: float
    kappa: float | None
    n_kappa: int
    n_missed: int
    kappa_se: float | None = None
    kappa_ci: tuple[float, float] | None = None
    n_changes: int = 0
    recall: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def too_few(self) -> bool:
        """Fewer than :data:`MIN_KAPPA_ENDPLATES` endplates or :data:`MIN_KAPPA_CHANGES` changes."""
        return self.n_kappa < MIN_KAPPA_ENDPLATES or self.n_changes < MIN_KAPPA_CHANGES

    @property
    def versus_experts(self) -> str:
        """``"below"``, ``"within"`` or ``"above"`` the expert range, ``"too few"`` (see
        :attr:`too_few`) or ``"n/a"`` (kappa undefined)."""
        if self.kappa is None:
            return "n/a"
        if self.too_few:
            return "too few"
        lo, hi = EXPERT_KAPPA_RANGE
        return "below" if self.kappa < lo else "above" if self.kappa > hi else "within"

    @property
    def warning(self) -> str:
        """Why the kappa is not compared with the expert range, or ""."""
        if self.kappa is None or not self.too_few:
            return ""
        return (
            f"{self.trainee or 'this trainee'}: kappa over {self.n_kappa} endplates with {self.n_changes} "
            f"Modic change{'s' if self.n_changes != 1 else ''} in the keys is too uncertain to compare with "
            f"the expert range (it needs at least {MIN_KAPPA_ENDPLATES} endplates and "
            f"{MIN_KAPPA_CHANGES} changes): read more cases"
        )


@dataclass(frozen=True)
class CaseSummary:
    """How a case went: attempts, trainees, mean score (all attempts)."""

    case: str
    title: str
    attempts: int
    trainees: int
    mean_score: float


@dataclass(frozen=True)
class EndplateMisses:
    """How often one endplate of one case was not given full credit (all attempts).

    ``wrong_answers`` counts the answers given instead (``"-"`` = not answered).
    """

    case: str
    endplate: str
    key: str
    graded: int
    missed: int
    wrong_answers: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.missed / self.graded if self.graded else 0.0


@dataclass
class TeachingSummary:
    """The summary of an attempt log (:func:`summary`)."""

    trainees: list[TraineeSummary]
    cases: list[CaseSummary]
    endplates: list[EndplateMisses]
    n_attempts: int
    source: str = ""
    expert_range: tuple[float, float] = EXPERT_KAPPA_RANGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_attempts": self.n_attempts,
            "expert_kappa_range": list(self.expert_range),
            "expert_kappa_source": EXPERT_KAPPA_SOURCE,
            "trainees": [
                {
                    "trainee": t.trainee,
                    "attempts": t.attempts,
                    "cases": t.cases,
                    "mean_score": round(t.mean_score, 4),
                    "first_attempt_score": round(t.first_score, 4),
                    "kappa": None if t.kappa is None else round(t.kappa, 4),
                    "kappa_se": None if t.kappa_se is None else round(t.kappa_se, 4),
                    "kappa_ci95": None if t.kappa_ci is None else [round(v, 4) for v in t.kappa_ci],
                    "kappa_endplates": t.n_kappa,
                    "kappa_changes": t.n_changes,
                    "recall": {k: {"found": f, "of": n} for k, (f, n) in t.recall.items()},
                    "warning": t.warning,
                    "unanswered": t.n_missed,
                    "versus_experts": t.versus_experts,
                }
                for t in self.trainees
            ],
            "cases": [
                {
                    "case": c.case,
                    "title": c.title,
                    "attempts": c.attempts,
                    "trainees": c.trainees,
                    "mean_score": round(c.mean_score, 4),
                }
                for c in self.cases
            ],
            "most_missed": [
                {
                    "case": e.case,
                    "endplate": e.endplate,
                    "key": e.key,
                    "graded": e.graded,
                    "missed": e.missed,
                    "rate": round(e.rate, 4),
                    "answers_instead": dict(e.wrong_answers),
                }
                for e in self.endplates
            ],
        }

    def to_text(self, top: int = 5) -> str:
        """A readable report (what ``modic teach summary`` prints)."""
        if not self.n_attempts:
            return f"No attempts logged{f' in {self.source}' if self.source else ''} yet.\n"
        lines = [
            f"{self.n_attempts} attempt{'s' if self.n_attempts != 1 else ''} by {len(self.trainees)} "
            f"trainee{'s' if len(self.trainees) != 1 else ''} on {len(self.cases)} "
            f"case{'s' if len(self.cases) != 1 else ''}" + (f" ({self.source})" if self.source else ""),
            f"Agreement with the keys (Cohen's kappa, first attempts; 95% interval of Fleiss, Cohen & "
            f"Everitt 1969) next to {EXPERT_KAPPA_SOURCE}",
            "",
        ]
        header = (
            "trainee",
            "attempts",
            "cases",
            "mean score",
            "first-attempt score",
            "kappa [95% CI] (endplates, changes)",
            "vs experts",
        )
        rows = [
            (
                t.trainee or "(unnamed)",
                str(t.attempts),
                str(t.cases),
                f"{t.mean_score:.0%}",
                f"{t.first_score:.0%}",
                ("n/a" if t.kappa is None else f"{t.kappa:.2f}")
                + (f" [{t.kappa_ci[0]:.2f}, {t.kappa_ci[1]:.2f}]" if t.kappa_ci else "")
                + f" ({t.n_kappa}, {t.n_changes})",
                t.versus_experts,
            )
            for t in self.trainees
        ]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        for r in rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        lines.append("")
        for t in self.trainees:
            if t.recall:
                lines.append(
                    f"Found, by the key's type ({t.trainee or '(unnamed)'}): {_recall_text(t.recall)}"
                )
        for t in self.trainees:
            if t.warning:
                lines.append(f"Warning: {t.warning}")
        lines.append("")
        lines.append("Cases, hardest first:")
        for c in self.cases[:top]:
            plural = "s" if c.attempts != 1 else ""
            lines.append(
                f"  {c.case}: mean score {c.mean_score:.0%} over {c.attempts} attempt{plural} ({c.title})"
            )
        missed = [e for e in self.endplates if e.missed][:top]
        if missed:
            lines.append("Endplates most often missed (less than full credit):")
            for e in missed:
                instead = ", ".join(
                    f"{'not answered' if a == '-' else a} x{n}"
                    for a, n in sorted(e.wrong_answers.items(), key=lambda kv: -kv[1])
                )
                lines.append(
                    f"  {e.case} {e.endplate} (key {e.key}): missed in {e.missed} of {e.graded} "
                    f"attempt{'s' if e.graded != 1 else ''} (answered {instead})"
                )
        return "\n".join(lines) + "\n"


def summary(
    log: str | os.PathLike[str] | Iterable[Mapping[str, Any]] | None = None,
    *,
    renamed: Mapping[str, str] | None = None,
) -> TeachingSummary:
    """Summarise an attempt log.

    Parameters
    ----------
    log : path-like or iterable of dict, optional
        A log folder (default :func:`~modic.teaching.default_log_dir`), or attempt records
        as :func:`~modic.teaching.read_attempts` returns them.
    renamed : mapping of str to str, optional
        Former case ids to the ids now (default the shipped cases',
        :data:`~modic.teaching.SHIPPED_FORMER_IDS`): attempts under an old id count as
        attempts at the case.

    Returns
    -------
    TeachingSummary
        Trainees by name; cases hardest first (lowest mean score); endplates by how
        often they were missed (credit below 1, or not answered), most often first.
    """
    records: list[dict[str, Any]]
    if log is None or isinstance(log, (str, os.PathLike)):
        source = str(log) if log is not None else ""
        records = read_attempts(Path(log) if log is not None else None, renamed=renamed)
    else:
        source = ""
        records = with_current_ids([dict(r) for r in log], renamed)
    by_trainee: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in sorted(records, key=lambda r: str(r.get("time", ""))):
        by_trainee[str(rec["trainee"])].append(rec)

    trainees = []
    for name in sorted(by_trainee):
        recs = by_trainee[name]
        first: dict[str, Mapping[str, Any]] = {}
        for attempt in recs:
            first.setdefault(str(attempt["case"]), attempt)
        answers, keys, n_missed = [], [], 0
        all_answers: list[str | None] = []
        all_keys: list[str] = []
        for attempt in first.values():
            for e in attempt["endplates"]:
                all_answers.append(None if e["answer"] is None else str(e["answer"]))
                all_keys.append(str(e["key"]))
                if e["answer"] is None:
                    n_missed += 1
                else:
                    answers.append(str(e["answer"]))
                    keys.append(str(e["key"]))
        interval = kappa_interval(answers, keys)
        trainees.append(
            TraineeSummary(
                trainee=name,
                attempts=len(recs),
                cases=len(first),
                mean_score=sum(float(r["score"]) for r in recs) / len(recs),
                first_score=sum(float(r["score"]) for r in first.values()) / len(first),
                kappa=cohen_kappa(answers, keys),
                n_kappa=len(answers),
                n_missed=n_missed,
                kappa_se=None if interval is None else interval[0],
                kappa_ci=None if interval is None else (interval[1], interval[2]),
                n_changes=sum(1 for k in keys if k != "0"),
                recall=type_recall(all_answers, all_keys),
            )
        )

    by_case: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for rec in records:
        by_case[str(rec["case"])].append(rec)
    cases = [
        CaseSummary(
            case=cid,
            title=str(recs[-1].get("case_title", "")),
            attempts=len(recs),
            trainees=len({r["trainee"] for r in recs}),
            mean_score=sum(float(r["score"]) for r in recs) / len(recs),
        )
        for cid, recs in by_case.items()
    ]
    cases.sort(key=lambda c: (c.mean_score, c.case))

    counts: dict[tuple[str, str], list[Any]] = {}
    for rec in records:
        for e in rec["endplates"]:
            k = (str(rec["case"]), str(e["endplate"]))
            entry = counts.setdefault(k, [str(e["key"]), 0, 0, Counter()])
            entry[1] += 1
            if e["answer"] is None or float(e["credit"]) < 1.0:
                entry[2] += 1
                entry[3]["-" if e["answer"] is None else str(e["answer"])] += 1
    endplates = [
        EndplateMisses(case=c, endplate=ep, key=v[0], graded=v[1], missed=v[2], wrong_answers=dict(v[3]))
        for (c, ep), v in counts.items()
    ]
    endplates.sort(key=lambda e: (-e.rate, -e.missed, e.case, e.endplate))
    return TeachingSummary(
        trainees=trainees, cases=cases, endplates=endplates, n_attempts=len(records), source=source
    )
