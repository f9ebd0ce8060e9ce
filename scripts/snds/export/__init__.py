"""`snds project export ID`: a research project's extracts as a verified, encrypted, reproducible package.

`package` writes and checks the files, `scan` looks for pseudonyms of the platform in them, `recipients` reads the
age public keys the package is encrypted to, `xpt` writes SAS transport files. See docs/export.md.
"""
