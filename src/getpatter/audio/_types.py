"""Array and buffer aliases shared by the audio modules (typing only)."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

#: Anything ``np.frombuffer`` reads without copying. Python 3.11 has no ``collections.abc.Buffer``.
BytesLike: TypeAlias = bytes | bytearray | memoryview

#: Mono PCM16 samples (any byte order; producers here always return little-endian ``<i2``).
Int16Array: TypeAlias = NDArray[np.int16]

#: G.711 code words, one byte a sample.
CodeArray: TypeAlias = NDArray[np.uint8]

#: Little-endian int16, the wire order of PCM16 inside getpatter.
PCM16_DTYPE = np.dtype("<i2")
