"""Undo / redo: a stack of snapshots of the annotations.

Every change the annotator makes (add, delete, move, edit, relabel) builds a new
:class:`~modic.annotations.Annotations` and pushes it here; undo and redo hand back copies,
so that nothing a caller does to a returned document can alter the history.
"""

from __future__ import annotations

import dataclasses

from ..annotations import Annotations

__all__ = ["History", "snapshot"]


def snapshot(annotations: Annotations) -> Annotations:
    """A copy of a document that shares nothing mutable with it.

    Shapes, labels and image planes are immutable and are shared; ROIs (whose
    ``modified`` and ``comment`` can change) and the list of ROIs are copied.
    """
    return dataclasses.replace(annotations, rois=[dataclasses.replace(r) for r in annotations.rois])


class History:
    """Snapshots of a document, with a position for undo and redo.

    Parameters
    ----------
    initial : Annotations
        The document as opened (undo never goes before it).
    limit : int
        Most snapshots kept; the oldest are dropped.

    Examples
    --------
    >>> h = History(Annotations(study_instance_uid="1.2"))
    >>> h.can_undo, h.can_redo
    (False, False)
    >>> h.push(Annotations(study_instance_uid="1.2", description="edited"))
    >>> h.undo().description, h.redo().description
    ('', 'edited')
    """

    def __init__(self, initial: Annotations, limit: int = 200) -> None:
        if limit < 2:
            raise ValueError(f"limit must be at least 2, got {limit}")
        self._states = [snapshot(initial)]
        self._index = 0
        self.limit = limit

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._states) - 1

    def __len__(self) -> int:
        return len(self._states)

    def push(self, state: Annotations) -> None:
        """Record the document after a change (drops what could have been redone)."""
        del self._states[self._index + 1 :]
        self._states.append(snapshot(state))
        if len(self._states) > self.limit:
            del self._states[0]
        self._index = len(self._states) - 1

    def undo(self) -> Annotations | None:
        """The document before the last change, or None when there is nothing to undo."""
        if not self.can_undo:
            return None
        self._index -= 1
        return snapshot(self._states[self._index])

    def redo(self) -> Annotations | None:
        """The document after the last undone change, or None when there is nothing to redo."""
        if not self.can_redo:
            return None
        self._index += 1
        return snapshot(self._states[self._index])
