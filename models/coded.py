"""A column of repeated strings (an item's category) as int32 codes into its sorted distinct
names. The artifact's items list one category per item: at 1M items a Python list of them held
~55 MB of string objects in every server worker, for a few hundred distinct names; the codes
take 4 MB and are what the server's filters and diversity use anyway."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np


class CodedStrings(Sequence):
    """Read-only `Sequence[str | None]`: `names[codes[i]]`, None where the code is -1."""

    __slots__ = ("codes", "names")

    def __init__(self, codes: np.ndarray, names: list[str]):
        self.codes, self.names = codes, names

    @classmethod
    def of(cls, values: Iterable[str | None]) -> CodedStrings:
        values = list(values)
        names = sorted({v for v in values if v is not None})
        code = {name: i for i, name in enumerate(names)}
        codes = np.fromiter((-1 if v is None else code[v] for v in values), np.int32, len(values))
        return cls(codes, names)

    def __len__(self) -> int:
        return self.codes.size

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.names[c] if c >= 0 else None for c in self.codes[i].tolist()]
        c = int(self.codes[i])
        return self.names[c] if c >= 0 else None

    def __iter__(self) -> Iterator[str | None]:
        names = self.names
        return (names[c] if c >= 0 else None for c in self.codes.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(
            a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]
