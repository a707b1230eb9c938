"""Teaching cases for radiology trainees: read a case blind, commit, get graded, see the key.

Quick start
-----------
>>> from modic.teaching import list_cases, shipped_cases_dir, TraineeAnswer, grade
>>> cases = list_cases(shipped_cases_dir())
>>> [c.id for c in cases]
['case-01', 'case-02', 'case-03']
>>> case = cases[0]
>>> print(case.history)  # doctest: +ELLIPSIS
48-year-old office worker with low back pain ...
>>> types = {str(label): "0" for label in case.key} | {"L4 inferior": "1", "L5 superior": "1"}
>>> answer = TraineeAnswer(types=types)
>>> g = grade(case, answer, trainee="alice")
>>> print(g.to_text().splitlines()[2])
Score: 91% (10 of 11 endplates)
>>> g.row("L5 superior").verdict
'no credit'

Then ``log_attempt(g, log_dir)`` appends the attempt to the trainee log,
``feedback_figure(g)`` draws the trainee's ROIs next to the key, ``summary(log_dir)``
gives each trainee's kappa against the keys next to the expert range, and
``TeachingSession(case, "alice", log_dir)`` does it all around the annotator in a
notebook. On the command line: ``modic teach author | run | grade | list | summary``.
See docs/teaching.md for the formats and the grading rules.
"""

from __future__ import annotations

from ._json import TeachingFormatError
from .answer import TraineeAnswer, read_answer, write_answer
from .case import (
    DIFFICULTIES,
    EXTENT_GRADES,
    KeyEndplate,
    TeachingCase,
    author_case,
    current_ids,
    list_cases,
    load_case,
    write_case,
)
from .feedback import feedback_figure
from .grading import DICE_MATCH, EndplateGrade, Grade, grade, roi_dice, shape_disagreement, type_credit
from .log import default_log_dir, log_attempt, read_attempts
from .session import TeachingSession
from .shipped import SHIPPED_CASES, SHIPPED_FORMER_IDS, shipped_cases_dir, write_teaching_cases
from .summary import EXPERT_KAPPA_RANGE, TeachingSummary, cohen_kappa, kappa_interval, summary, type_recall

__all__ = [
    # cases
    "TeachingCase",
    "KeyEndplate",
    "load_case",
    "list_cases",
    "current_ids",
    "write_case",
    "author_case",
    "DIFFICULTIES",
    "EXTENT_GRADES",
    "TeachingFormatError",
    # answers and grades
    "TraineeAnswer",
    "read_answer",
    "write_answer",
    "grade",
    "Grade",
    "EndplateGrade",
    "type_credit",
    "roi_dice",
    "shape_disagreement",
    "DICE_MATCH",
    "feedback_figure",
    # log and summary
    "log_attempt",
    "read_attempts",
    "default_log_dir",
    "summary",
    "TeachingSummary",
    "cohen_kappa",
    "kappa_interval",
    "type_recall",
    "EXPERT_KAPPA_RANGE",
    # notebook
    "TeachingSession",
    # shipped cases
    "shipped_cases_dir",
    "write_teaching_cases",
    "SHIPPED_CASES",
    "SHIPPED_FORMER_IDS",
]
