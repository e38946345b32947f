"""boto3 helpers shared by the AWS backends (SQS queue, DynamoDB store, SES delivery):
client construction, one translation of botocore errors, request metering.

Imported only by those backends, the deploy tools and the wiring: importing
:mod:`cv_analytics` never imports boto3.
"""
