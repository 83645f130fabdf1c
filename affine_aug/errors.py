"""The root of the errors affine_aug raises on purpose.

Every error the library raises about its inputs derives from :class:`AffineAugError`, so
one ``except AffineAugError`` catches all of them; each also keeps the built-in base it
had (``ConfigError`` is a ``ValueError``), so code that catches those still works:

    AffineAugError
      ConfigError (also ValueError)   a config: syntax, unknown keys, bad values, bad files
      BadImage                        an image file that cannot be read
      the job and dataset errors      of ``generate`` and ``gtsrb`` (affine_aug.jobs, affine_aug.gtsrb)

Plain argument errors of the array functions (a bad shape, dtype or fill) are
``ValueError`` / ``TypeError``, as numpy's and torch's are.
"""

from __future__ import annotations

__all__ = ["AffineAugError"]


class AffineAugError(Exception):
    """Root of the errors affine_aug raises about its inputs (configs, files, jobs)."""
