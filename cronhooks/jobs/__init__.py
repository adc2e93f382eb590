"""Job definitions: the allowlist of what an HTTP trigger may run.

A job is declared in ``CRONHOOKS["JOBS"]`` as ``name: {...}``; the keys it
may have are ``definition.JOB_FIELDS`` (the README's "A job" table), its
parameters' keys ``params.PARAM_KEYS``.

- ``job``: the ``Job`` the run path uses;
- ``params``: a job's parameters and how caller values are cleaned;
- ``schedule``: cron expressions, one or one per scheduler environment;
- ``definition``: reading a settings entry into a ``Job``;
- ``registry``: every declared job, parsed once per settings change.
"""

from __future__ import annotations

from cronhooks.jobs.definition import JOB_FIELDS, JOB_KEYS, JOB_NAME_RE, parse_job
from cronhooks.jobs.job import Job
from cronhooks.jobs.params import PARAM_KEYS, Param, ParamType, parse_param
from cronhooks.jobs.registry import all_jobs, definitions, get_job
from cronhooks.jobs.schedule import ANY_ENVIRONMENT, ENVIRONMENT_RE

__all__ = [
    "ANY_ENVIRONMENT",
    "ENVIRONMENT_RE",
    "JOB_FIELDS",
    "JOB_KEYS",
    "JOB_NAME_RE",
    "PARAM_KEYS",
    "Job",
    "Param",
    "ParamType",
    "all_jobs",
    "definitions",
    "get_job",
    "parse_job",
    "parse_param",
]
