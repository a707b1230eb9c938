"""Keyboard and mouse shortcuts of the annotator: one table for the code, the help and the docs."""

from __future__ import annotations

__all__ = ["KEY_ACTIONS", "SHORTCUTS", "MOUSE", "help_text"]

#: Matplotlib key name -> action. ``ctrl`` and ``cmd`` (macOS) variants are both listed.
KEY_ACTIONS: dict[str, str] = {
    "p": "tool:polygon",
    "r": "tool:rectangle",
    "e": "tool:ellipse",
    "f": "tool:freehand",
    "v": "tool:select",
    "escape": "cancel",
    "up": "slice:+1",
    "right": "slice:+1",
    "down": "slice:-1",
    "left": "slice:-1",
    "pageup": "slice:+5",
    "pagedown": "slice:-5",
    "+": "zoom:in",
    "=": "zoom:in",
    "-": "zoom:out",
    "home": "reset",
    "0": "reset",
    "w": "window:next",
    "[": "label:up",
    "]": "label:down",
    "s": "label:superior",
    "i": "label:inferior",
    "n": "label:reference",
    "l": "label:apply",
    "tab": "select:next",
    "delete": "delete",
    "backspace": "delete",
    "ctrl+z": "undo",
    "cmd+z": "undo",
    "ctrl+y": "redo",
    "cmd+y": "redo",
    "ctrl+Z": "redo",
    "ctrl+shift+z": "redo",
    "cmd+Z": "redo",
    "cmd+shift+z": "redo",
    "ctrl+s": "save",
    "cmd+s": "save",
    "h": "help",
    "?": "help",
    "P": "propose:all",
    "V": "levels:toggle",
    "O": "propose:one",
}

#: ``(keys, what they do)`` for the help overlay and docs/annotator.md.
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("p / r / e / f", "draw a polygon / rectangle / ellipse / freehand ROI"),
    ("v", "select tool: click inside an ROI, drag to move it, drag a polygon vertex"),
    ("esc", "cancel the shape being drawn; deselect"),
    ("[ / ]", "label: vertebra up (head) / down (feet)"),
    ("s / i / n", "label: superior / inferior endplate / reference (normal marrow)"),
    ("l", "apply the chosen label to the selected ROI"),
    ("tab", "select the next ROI (and show its slice)"),
    ("delete / backspace", "delete the selected ROI"),
    ("ctrl+z / ctrl+y", "undo / redo (also ctrl+shift+z)"),
    ("ctrl+s", "save now (every change is also autosaved)"),
    ("up/down, left/right", "next / previous slice (all panes follow in patient space)"),
    ("page up / page down", "5 slices"),
    ("+ / -", "zoom in / out (all panes, same patient region)"),
    ("w", "next window preset: default, wide, narrow"),
    ("home or 0", "reset zoom, pan and window"),
    ("shift+p (P)", "propose ROIs from the image for every vertebra (drawn ROIs are kept)"),
    ("shift+o (O)", "propose one vertebra: the next left click inside a body proposes its ROIs"),
    ("shift+v (V)", "show / hide the level names beside the spine (from the proposal)"),
    ("h or ?", "show / hide this help"),
)

#: ``(mouse action, what it does)``.
MOUSE: tuple[tuple[str, str], ...] = (
    ("wheel", "next / previous slice"),
    ("ctrl or shift + wheel", "zoom at the mouse"),
    ("left click / drag", "draw with the current tool; select and move with v"),
    ("middle drag", "pan"),
    ("right drag", "window: left-right = width, up-down = level"),
    ("move", "cross-reference cursor on every pane"),
)


def help_text() -> str:
    """The shortcuts as aligned plain text (help overlay, log)."""
    width = max(len(k) for k, _ in SHORTCUTS + MOUSE)
    lines = ["Keyboard"]
    lines += [f"  {k:<{width}}  {what}" for k, what in SHORTCUTS]
    lines += ["", "Mouse"]
    lines += [f"  {k:<{width}}  {what}" for k, what in MOUSE]
    return "\n".join(lines)
