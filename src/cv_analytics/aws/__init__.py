"""cv-analytics on AWS: resource descriptions, bootstrap without CloudFormation, the Lambda package.

The CloudFormation stack is ``infra/template.yaml``; the command line is
``cv-analytics aws ...`` (:mod:`cv_analytics.entrypoints.cli.aws`).
"""

from .bootstrap import AwsClients, BootstrapReport, bootstrap
from .package import build_package
from .resources import FUNCTIONS, QUEUES, TABLES, FunctionSpec, QueueSpec, TableSpec

__all__ = [
    "FUNCTIONS",
    "QUEUES",
    "TABLES",
    "AwsClients",
    "BootstrapReport",
    "FunctionSpec",
    "QueueSpec",
    "TableSpec",
    "bootstrap",
    "build_package",
]
