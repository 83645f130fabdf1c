"""Offline generation as a job: plan → run_shard → executor → manifest.

    plan_generate(...)   metadata only: the input listing, its digest, the job's identity
                         and shards of source images (keys follow ``conventions.copy_key``);
                         ``gtsrb.plan_gtsrb`` plans the GTSRB job the same way from its CSVs
    run_shard(job, s)    read, augment, encode and write one shard atomically; returns only
                         its statistics (rows, sha256, node, files)
    run_job(job, ...)    lock the output, check the identity, verify finished shards, run
                         the rest in-process, in local processes or as Ray tasks, then write
                         ``manifest.json`` (last: an output without it is not complete)
    start_ray(..., warm=True) / stop_ray()
                         connect to Ray before planning, so that its workers start while
                         the plan is made, and disconnect at once at the end (the CLI does)

The modules, one concern each:

    plan           Job, the plan rows, the job kinds' hooks (JobKind), the shared identity
    generate       the ``generate`` kind: the ImageFolder listing, plan_generate, its hooks
    formats        a shard format is a suffix and a writer of one shard (npz, webdataset, parquet)
    state          the lock, the records, resume, the packing of the state folder
    executors      in-process and local processes;  ray_executor: Ray tasks and Ray's lifecycle
    engine         run_job and run_shard

Every executor calls the same ``run_shard``, so their bytes are identical. Where things go:

    OUT/manifest.json            identity, shards (name, rows, sha256, node), skipped files;
                                 ``_manifest.json`` for parquet (Parquet readers of a folder skip ``_`` names)
    OUT/part-NNNNN.{npz,tar,parquet}   or, for ``folder``, OUT/<class>/<path>_<ext>_<copy>.png
    OUT/.affine_aug.lock         held by the running job (a file: no reader takes it for data)
    OUT/.affine_aug/             the state while the job runs (a complete job packs it into
                                 ``OUT/.affine_aug.json``, so that ``ImageFolder("OUT")`` sees classes only;
                                 a rerun unpacks it):
      job.json                   the identity, written before the first shard
      targets.json               every file the job will write, written before the first shard
      token                      (Ray) what each worker must read there: the proof it sees the driver's output
      shards/                    one record per finished shard (the resume state)
      parts/, splits/            gtsrb npz: shard parts, and the record of each SPLIT.npz
                                 joined from them (the parts are deleted once joined)
      tmp/                       temporary files (never match an output glob), cleaned

Only files that these records list are ever replaced or deleted: an output that holds no
job is refused (even with ``--overwrite``), and so is a job whose planned file is already
there unlisted. ``--overwrite`` of another job deletes every file its records list,
planned or written (a killed run's files go too), and the folders left empty.

Python use::

    from affine_aug.jobs import plan_generate, run_job
    job = plan_generate("images/", "out/", config="mild", copies=4, size=(64, 64), fmt="webdataset")
    manifest = run_job(job, workers=2)          # or executor="ray", address="HOST:PORT"
"""

from .._deprecated import renamed

# the names affine_aug.jobs has always offered (those outside __all__ for inspection and tests)
from .engine import manifest_name, planned_files, run_job, run_shard  # noqa: F401
from .errors import JobDataError, JobError
from .formats import FORMATS, IMAGE_FORMATS, SHARD_SUFFIX, png_encoder, write_npz  # noqa: F401
from .generate import plan_generate, target_name  # noqa: F401
from .plan import Job, SourceRow, job_summary  # noqa: F401
from .ray_executor import GCS_PROBE_S, RAY_RETRIES, start_ray, stop_ray  # noqa: F401
from .state import LOCK, OWN_NAMES, PACKED, STATE  # noqa: F401

__all__ = [
    "FORMATS",
    "Job",
    "JobDataError",
    "JobError",
    "plan_generate",
    "run_job",
    "run_shard",
    "start_ray",
    "stop_ray",
]


# deprecated aliases of names that were public by accident, removed in the next release
__getattr__ = renamed(
    "affine_aug.jobs",
    {"check_places": "affine_aug.jobs.plan._check_places", "digest_lines": "affine_aug.jobs.plan._digest_lines"},
)
