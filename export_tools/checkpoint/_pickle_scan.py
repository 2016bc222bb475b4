"""A dry run of a pickle's stack and memo, before the real unpickler builds anything.

``StructureScan`` follows every opcode the way the unpickler would, but keeps only one number per
object: its nesting depth (0 for a scalar, 1 + the deepest child for a container). Two attacks are
refused this way, both before any memory is allocated for them:

* memo indices: ``LONG_BINPUT 2**29`` makes CPython's unpickler grow its memo table to 2**29 slots
  (8 GB) for a 9-byte stream. A pickler numbers its memo entries 0, 1, 2, ..., so an index may be at
  most the number of entries stored so far; the memo then never holds more slots than the stream
  has opcodes.
* nesting depth: a tuple nested 300 000 deep (one byte per level) crashes the interpreter when it
  is hashed as a dict key, and deep structures break every recursive walk later. Depth is bounded
  by ``MAX_DEPTH``; checkpoints nest a dozen levels at most.

Objects are shared through the memo and ``DUP``, so each object is one mutable cell; ``APPEND``,
``SETITEM(S)``, ``ADDITEMS`` and ``BUILD`` deepen their target's cell in place. A container that
is deepened after it was put into another one does not re-measure its holders; only tuples and
frozensets are hashed recursively, and those are immutable, so their depth is exact when built.
"""

from __future__ import annotations

from pickletools import OpcodeInfo, markobject, stackslice
from typing import Any

from export_tools.errors import CheckpointError

MAX_DEPTH = 200
"""Deepest nesting of containers a checkpoint pickle may have."""

_MUTATORS = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PASSTHROUGH = frozenset({"READONLY_BUFFER"})


class _Cell:
    """The depth of one object of the simulated stack."""

    __slots__ = ("depth",)

    def __init__(self, depth: int) -> None:
        self.depth = depth


class StructureScan:
    """Feed every opcode to ``step``; CheckpointError on a memo or depth violation."""

    def __init__(self) -> None:
        self._stack: list[_Cell] = []
        self._marks: list[int] = []
        self._memo: dict[int, _Cell] = {}

    def step(self, opcode: OpcodeInfo, arg: Any, pos: int) -> None:
        name = opcode.name
        if name == "MARK":
            self._marks.append(len(self._stack))
        elif name in _PUTS or name == "MEMOIZE":
            self._put(len(self._memo) if name == "MEMOIZE" else arg, pos)
        elif name in _GETS:
            cell = self._memo.get(arg) if isinstance(arg, int) else None
            if cell is None:
                raise CheckpointError(f"pickle reads memo entry {arg} at byte {pos}, never stored")
            self._stack.append(cell)
        elif name == "DUP":
            self._stack.append(self._top(pos))
        elif name == "POP":
            self._pop_one(pos)
        elif name not in _PASSTHROUGH:
            self._generic(opcode, pos)

    def _top(self, pos: int) -> _Cell:
        floor = self._marks[-1] if self._marks else 0
        if len(self._stack) <= floor:
            raise CheckpointError(f"corrupt pickle: stack underflow at byte {pos}")
        return self._stack[-1]

    def _pop_one(self, pos: int) -> None:
        floor = self._marks[-1] if self._marks else 0
        if len(self._stack) > floor:
            self._stack.pop()
        elif self._marks:
            self._marks.pop()  # like CPython: POP on an empty frame drops the mark
        else:
            raise CheckpointError(f"corrupt pickle: stack underflow at byte {pos}")

    def _put(self, index: Any, pos: int) -> None:
        if not isinstance(index, int) or not 0 <= index <= len(self._memo):
            raise CheckpointError(
                f"pickle stores memo entry {index} at byte {pos}, but only {len(self._memo)} "
                "entries exist (a memo index must be the next free one; memory bomb refused)"
            )
        self._memo[index] = self._top(pos)

    def _take(self, opcode: OpcodeInfo, pos: int) -> list[_Cell]:
        """Pop what ``opcode`` consumes (everything down to and including a mark, if it has one)."""
        before = opcode.stack_before
        taken: list[_Cell] = []
        if markobject in before:
            if not self._marks:
                raise CheckpointError(f"corrupt pickle: {opcode.name} without MARK at byte {pos}")
            mark = self._marks.pop()
            taken = self._stack[mark:]
            del self._stack[mark:]
            before = before[: before.index(markobject)]
        plain = [item for item in before if item is not stackslice]
        floor = self._marks[-1] if self._marks else 0
        if len(self._stack) - len(plain) < floor:
            raise CheckpointError(f"corrupt pickle: stack underflow at {opcode.name}, byte {pos}")
        if plain:
            taken = self._stack[-len(plain) :] + taken
            del self._stack[-len(plain) :]
        return taken

    def _generic(self, opcode: OpcodeInfo, pos: int) -> None:
        taken = self._take(opcode, pos)
        if opcode.name in _MUTATORS:
            target, values = taken[0], taken[1:]
            target.depth = max([target.depth] + [v.depth + 1 for v in values])
            self._check(target, pos)
            self._stack.append(target)
            return
        depth = 1 + max(cell.depth for cell in taken) if taken else 0
        for _ in opcode.stack_after:
            cell = _Cell(depth)
            self._check(cell, pos)
            self._stack.append(cell)

    @staticmethod
    def _check(cell: _Cell, pos: int) -> None:
        if cell.depth > MAX_DEPTH:
            raise CheckpointError(
                f"pickle nests containers more than {MAX_DEPTH} levels deep (at byte {pos})"
            )
