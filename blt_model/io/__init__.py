"""Models on disk: this project's checkpoint format, transformers-format import/export, and the
model shipped with the package. (Named `io` as in "input/output"; modules import the standard
library's io with absolute imports, so the two never meet.)"""
