"""The live tuning page: ``affine-aug tune [IMAGE_OR_FOLDER ...] [--config C]``.

A local web page (Starlette + uvicorn, the ``tune`` extra) with a control for every key
of a config, the YAML kept in sync with them, and a live grid of keyed samples warped
in the server by the compiled kernel. Modules: ``configs`` (page text / mappings →
validated configs), ``sources`` (the images it may read, bounded decoding), ``render``
(one grid: sample → warp → encode), ``server`` (the routes), ``static/`` (the page).
"""

MISSING = "the tuning page needs its extra: pip install affine_aug[tune]"
