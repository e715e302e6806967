"""The model as a compressor (issue 16): arithmetic (range) coding driven by the exact batched
engine's next-byte distribution. `api.py` (compress, decompress and their file versions),
`coder.py` (the quantisation and the coding loop), `container.py` (the file format),
`identity.py` (the model's hash and the platform record). Needs the optional `constriction`
library: pip install 'blt-chat[compress]'."""

from .api import (
    DEFAULT_BATCH_SIZE,
    compress,
    compress_file,
    decompress,
    decompress_file,
    default_chunk_size,
    read_header,
)
from .container import FORMAT_VERSION, CodecError, Header

__all__ = ["DEFAULT_BATCH_SIZE", "FORMAT_VERSION", "CodecError", "Header", "compress", "compress_file",
           "decompress", "decompress_file", "default_chunk_size", "read_header"]
