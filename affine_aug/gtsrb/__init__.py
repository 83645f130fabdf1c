"""GTSRB (German Traffic Sign Recognition Benchmark): reading its layouts
(:mod:`~affine_aug.gtsrb.layouts`), a synthetic stand-in (:mod:`~affine_aug.gtsrb.synthetic`),
and the preprocessing job (:mod:`~affine_aug.gtsrb.job`: ROI crop + resize + random affine
in one resampling; its npz splits joined by :mod:`~affine_aug.gtsrb.join`).

Layouts read (labels always come from the ``ClassId`` column, never from folder names):

* official: ``GTSRB/Final_Training/Images/000NN/TTTTT_FFFFF.ppm`` with ``GT-000NN.csv``
  in each class folder; test images ``GTSRB/Final_Test/Images/NNNNN.ppm`` with
  ``GT-final_test.csv`` next to them (or given explicitly). CSVs are ``;``-separated:
  ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``.
* torchvision: ``root/gtsrb/GTSRB/Training/000NN/...`` (CSVs in the class folders) and
  ``root/gtsrb/GTSRB/Final_Test/Images`` with ``root/gtsrb/GT-final_test.csv``.
* Kaggle: ``root/Train.csv`` / ``root/Test.csv``, comma-separated, with a ``Path`` column
  relative to ``root`` (PNG files).

ROI convention: ``Roi.X1, Roi.Y1`` are the first sign pixel, ``Roi.X2, Roi.Y2`` one past
the last (exclusive). The published data shows it: a 29x30 image with ROI (5, 6, 24, 25)
has 5-pixel margins on every side only if X2/Y2 are exclusive (GTSRB promises >= 5 px).
The ROI is therefore the pixel-edge box ``(X1, Y1, X2, Y2)``, the convention of boxes
everywhere in this library.

Tracks: a training file ``TTTTT_FFFFF`` is frame FFFFF of track TTTTT (one physical
sign seen 30 times as the car approaches). Validation holds out whole tracks.
"""

from .._deprecated import renamed

# the names affine_aug.gtsrb has always offered (and GtsrbRow, the rows of its plan)
from .job import GtsrbRow, plan_gtsrb, preprocess, split_tracks  # noqa: F401
from .layouts import COLUMNS, NUM_CLASSES, DataError, GtsrbSample, read_gtsrb  # noqa: F401
from .synthetic import TEST_COUNTS, TRAIN_COUNTS, make_synthetic  # noqa: F401

__all__ = ["DataError", "GtsrbSample", "make_synthetic", "plan_gtsrb", "preprocess", "read_gtsrb"]


# a deprecated alias, removed in the next release
__getattr__ = renamed("affine_aug.gtsrb", {"SYNTHETIC_MARKER": "affine_aug.gtsrb.synthetic._SYNTHETIC_MARKER"})
