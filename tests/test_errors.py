"""modic's exceptions (:mod:`modic.errors`): all defined in one module, the old import paths
still working, and every one surviving a pickle round trip (and a real worker process) with
its class and its fields, as a batch worker's error must."""

from __future__ import annotations

import concurrent.futures
import importlib
import multiprocessing
import pickle
import pkgutil
from pathlib import Path

import pytest

import modic
from modic import errors
from modic.errors import (
    AnnotationFormatError,
    DicomFileError,
    LabelMapError,
    MissingDependencyError,
    ModicError,
    OutputError,
    ProposalError,
    TeachingFormatError,
)

#: The errors with fields beyond the message, built as modic builds them.
WITH_FIELDS: list[BaseException] = [
    DicomFileError("/data/IM0001", "truncated: the pixel data ends early"),
    LabelMapError(Path("/seg/total.nii.gz"), "4-D: give one label volume"),
    ProposalError("study_1001", "has no sagittal T1 series"),
    AnnotationFormatError(
        "expected a number, got a string", field="rois[2].shape.points", source="a.modic.json"
    ),
    TeachingFormatError("unknown Modic type '4'", field="key['L4 inferior'].type", source="case/case.json"),
    MissingDependencyError('DICOM SR export needs highdicom: pip install "modic[export]"', extra="export"),
    OutputError("/out/results.csv: the disk is full; free some space", errno=28, filename="/out/results.csv"),
]


def _instances() -> list[BaseException]:
    """One instance of every class in ``modic.errors.__all__``: those above, and the others
    from a message alone (the way modic raises them)."""
    done = {type(e) for e in WITH_FIELDS}
    rest = [getattr(errors, name) for name in errors.__all__ if getattr(errors, name) not in done]
    return WITH_FIELDS + [cls("/some/where: what is wrong, and what to do") for cls in rest]


@pytest.mark.parametrize("err", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_survives_a_pickle_round_trip_with_its_fields(err: BaseException) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err) and back.args == err.args
    assert vars(back) == vars(err)
    if isinstance(err, OSError) and isinstance(back, OSError):  # errno, filename: slots, not in vars()
        assert (back.errno, back.filename) == (err.errno, err.filename)
    assert isinstance(back, ModicError)


def test_fields_and_messages_of_the_place_errors() -> None:
    e = LabelMapError(Path("/seg/total.nii.gz"), "4-D")
    assert (e.path, e.where, e.problem, str(e)) == ("/seg/total.nii.gz",) * 2 + (
        "4-D",
        "/seg/total.nii.gz: 4-D",
    )
    d = DicomFileError("/data/IM0001", "truncated")
    assert (d.path, d.problem, str(d)) == ("/data/IM0001", "truncated", "/data/IM0001: truncated")
    assert isinstance(d, ValueError) and isinstance(e, ValueError)
    p = ProposalError("study_1001", "no T1")
    assert (p.where, p.problem) == ("study_1001", "no T1")
    back = pickle.loads(pickle.dumps(TeachingFormatError("bad", field="id", source="c.json")))
    assert isinstance(back, TeachingFormatError) and (back.field, back.source) == ("id", "c.json")


def _raise_in_worker(which: str) -> None:
    raise {e.__class__.__name__: e for e in WITH_FIELDS}[which]


@pytest.mark.parametrize("which", ["ProposalError", "LabelMapError", "TeachingFormatError"])
def test_an_error_raised_in_a_spawned_worker_reaches_the_parent_whole(which: str) -> None:
    ctx = multiprocessing.get_context("spawn")  # as modic batch runs its workers
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        exc = pool.submit(_raise_in_worker, which).exception(timeout=120)
    want = next(e for e in WITH_FIELDS if type(e).__name__ == which)
    assert type(exc) is type(want) and str(exc) == str(want) and vars(exc) == vars(want)


OLD_PATHS = {
    "modic.labelmap": "LabelMapError",
    "modic.bands": "BandError",
    "modic.propose": "ProposalError",
    "modic.sr": "SRExportError",
    "modic.tables": "ResultsFileError",
    "modic.report.batch": "NoResultsError",
    "modic.batch": "OutputFolderError",
    "modic.dicomweb.server": "ServerUnavailableError",
    "modic.teaching._json": "TeachingFormatError",
    "modic.teaching": "TeachingFormatError",
    "modic.report": "NoResultsError",
}


@pytest.mark.parametrize(("module", "name"), OLD_PATHS.items())
def test_the_old_import_paths_give_the_same_class(module: str, name: str) -> None:
    assert getattr(importlib.import_module(module), name) is getattr(errors, name)


def test_every_modic_error_is_defined_in_modic_errors() -> None:
    """A ModicError subclass with a public name, anywhere in the package, is defined in
    modic.errors and listed in its ``__all__`` (private ones, ``_NotFound``, may stay)."""
    import matplotlib

    matplotlib.use("Agg")
    for info in pkgutil.walk_packages(modic.__path__, "modic."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
    found = set()
    stack: list[type] = [ModicError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("modic") and not cls.__name__.startswith("_"):
            found.add(cls)
    elsewhere = sorted(f"{c.__module__}.{c.__qualname__}" for c in found if c.__module__ != "modic.errors")
    assert not elsewhere, f"define these in modic/errors.py (and re-export them): {elsewhere}"
    assert {c.__name__ for c in found} == set(errors.__all__)
