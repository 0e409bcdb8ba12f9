"""sdg_client: a Python client for the SDG REST API.

    from sdg_client import SDG
    job = SDG("http://localhost:8000").text(Customer, 100).wait()
    df = job.to_pandas()
"""

__version__ = "0.1.0"

from sdg_client.errors import JobCancelled, JobError, JobFailed, SDGError, WaitTimeout
from sdg_client.gateway import SDG
from sdg_client.job import Job
from sdg_client.status import JobStats, JobStatus, JobSummary

__all__ = [
    "SDG",
    "Job",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobStats",
    "JobStatus",
    "JobSummary",
    "SDGError",
    "WaitTimeout",
    "__version__",
]
